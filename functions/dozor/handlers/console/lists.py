"""Console routes for the allow / block / review lists (the `dozor lists` CLI calls the same ones).

GET  /v1/console/lists            the entities on each list, with who put them there and why
POST /v1/console/lists/changes    put an entity on a list, or take it off (``list: null``)
GET  /v1/console/lists/history    one entity's changes, newest first

An entity is named by a typed value (a card fingerprint, a device id, an email, an address, a
buyer id; keyed here as an order's would be) or by its key as an order's detail lists it. Values
are never stored or echoed: only their keys.

No ``from __future__ import annotations``: the resolver reads the signatures at run time.
"""

from datetime import UTC, datetime
from typing import Annotated, Self

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dozor.domain.aggregates import Entity
from dozor.domain.errors import InvalidInputError
from dozor.domain.fraud.lists import (
    ListChange,
    ListedKind,
    ListEntry,
    ListKeeper,
    ListName,
    entity_of,
    parse_entity,
)
from dozor.handlers.console.identity import CONSOLE_RESPONSES, actor
from dozor.handlers.console.wiring import console_dependencies
from dozor.handlers.http_errors import documented

router = Router()  # type: ignore[no-untyped-call]  # powertools leaves its __init__ untyped

EntityKey = Annotated[str, Field(min_length=3, max_length=200, pattern=r"^[a-z]+#.+$")]
PER_LIST = 200


class EntryView(BaseModel):
    entity: str
    kind: ListedKind
    shown_as: str
    list: ListName | None
    by: str
    reason: str
    at: datetime
    order_id: str | None
    applied: bool = Field(description="false: recorded, but the scoring profile does not have it yet")


class ListsPage(BaseModel):
    entries: list[EntryView]


class ListHistory(BaseModel):
    entity: str
    changes: list[ListChange]


class ListChangeRequest(BaseModel):
    """Put an entity on a list (or take it off with ``list: null``), saying why."""

    model_config = ConfigDict(extra="forbid")

    kind: ListedKind
    value: Annotated[str, Field(min_length=1, max_length=320)] | None = Field(
        default=None, description="the card fingerprint, device id, email, address or buyer id"
    )
    entity: EntityKey | None = Field(default=None, description="or the entity's key, from an order's detail")
    order_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    list: ListName | None
    reason: Annotated[str, Field(min_length=1, max_length=500)]

    @model_validator(mode="after")
    def _one_name(self) -> Self:
        if (self.value is None) == (self.entity is None):
            raise ValueError("name the entity by value or by entity key (one of the two)")
        return self


def _view(entry: ListEntry) -> EntryView:
    change = entry.change
    return EntryView(
        entity=change.entity,
        kind=change.kind,
        shown_as=change.shown_as,
        list=change.list,
        by=change.by,
        reason=change.reason,
        at=change.at,
        order_id=change.order_id,
        applied=entry.applied,
    )


def _entity(request: ListChangeRequest) -> Entity:
    if request.value is not None:
        return entity_of(request.kind, request.value, console_dependencies().hasher)
    entity = parse_entity(str(request.entity))
    if entity.kind != request.kind.value:
        raise InvalidInputError(f"{request.entity} is not a {request.kind.value}")
    return entity


@router.get(
    "/v1/console/lists",
    summary="The entities on the allow, block and review lists",
    responses={200: documented("The entries, newest first", ListsPage), **CONSOLE_RESPONSES},
)
def lists(name: Annotated[ListName | None, Query(alias="list")] = None) -> ListsPage:
    records = console_dependencies().lists
    names = [name] if name else [ListName.BLOCK, ListName.REVIEW, ListName.ALLOW]
    return ListsPage(entries=[_view(e) for name in names for e in records.on_list(name, PER_LIST)])


@router.post(
    "/v1/console/lists/changes",
    summary="Put an entity on a list or take it off; who and why are recorded",
    responses={
        200: documented("The entity's entry now", EntryView),
        409: documented("Someone changed the same entity at the same moment; retry"),
        **CONSOLE_RESPONSES,
    },
)
def change(request: ListChangeRequest) -> EntryView:
    deps = console_dependencies()
    keeper = ListKeeper(deps.lists, deps.decisions)
    entry = keeper.change(
        _entity(request),
        request.list,
        by=actor(router.current_event.raw_event),
        reason=request.reason,
        at=datetime.now(UTC),
        order_id=request.order_id,
    )
    return _view(entry)


@router.get(
    "/v1/console/lists/history",
    summary="One entity's list changes, newest first",
    responses={200: documented("The changes", ListHistory), **CONSOLE_RESPONSES},
)
def history(
    entity: Annotated[str, Query(min_length=3, max_length=200, pattern=r"^[a-z]+#.+$")],
) -> ListHistory:
    key = parse_entity(entity).pk
    return ListHistory(entity=key, changes=console_dependencies().lists.history(key, 100))

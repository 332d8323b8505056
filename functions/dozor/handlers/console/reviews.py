"""Console routes for reviewers: the review queue, one order in detail, and verdicts.

GET  /v1/console/reviews                       open cases, oldest first, with buyer and seller history
GET  /v1/console/orders/{order_id}             a decision (search by order id), its case, its history
POST /v1/console/reviews/{order_id}/verdict    fraud or legit: the case is settled, Feedback is sent

No ``from __future__ import annotations``: the resolver reads the signatures at run time.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from dozor.domain import aggregates as agg
from dozor.domain.contracts import Decision
from dozor.domain.errors import NotFoundError
from dozor.domain.fraud.lists import ListedKind, shown
from dozor.domain.fraud.reviews import (
    EntityHistory,
    ReviewCase,
    Verdict,
    history_of,
    record_verdict,
)
from dozor.handlers.console.identity import CONSOLE_RESPONSES, actor
from dozor.handlers.console.wiring import ConsoleDependencies, console_dependencies
from dozor.handlers.http_errors import documented

router = Router()  # type: ignore[no-untyped-call]  # powertools leaves its __init__ untyped

OrderId = Annotated[str, Path(min_length=1, max_length=128)]
Note = Annotated[str, Field(max_length=500)]


class ReviewRow(BaseModel):
    case: ReviewCase
    buyer: EntityHistory
    seller: EntityHistory


class ReviewQueue(BaseModel):
    cases: list[ReviewRow]


class OrderEntity(BaseModel):
    """An entity of the order, as a list entry can name it (its key; personal values hashed)."""

    kind: ListedKind
    entity: str
    shown_as: str


class OrderDetail(BaseModel):
    decision: Decision
    case: ReviewCase | None
    buyer: EntityHistory | None
    seller: EntityHistory | None
    entities: list[OrderEntity]


class VerdictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    note: Note | None = None


def _histories(deps: ConsoleDependencies, entities: Iterable[agg.Entity]) -> dict[agg.Entity, EntityHistory]:
    """Each entity's counters as they stand now, read as scoring reads them (one batched read)."""
    wanted = set(entities)
    now = datetime.now(UTC)
    _, snapshot = deps.decisions.load([], agg.keys_for(wanted, now))
    return {e: history_of(agg.summarise(e, now, snapshot)) for e in wanted}


@router.get(
    "/v1/console/reviews",
    summary="Open review cases, oldest first",
    responses={200: documented("The open cases", ReviewQueue), **CONSOLE_RESPONSES},
)
def review_queue(limit: Annotated[int, Query(ge=1, le=100)] = 50) -> ReviewQueue:
    deps = console_dependencies()
    cases = deps.reviews.open_cases(limit)
    people = [agg.Entity("buyer", c.buyer_id) for c in cases] + [
        agg.Entity("seller", c.seller_id) for c in cases
    ]
    history = _histories(deps, people)
    return ReviewQueue(
        cases=[
            ReviewRow(
                case=c,
                buyer=history[agg.Entity("buyer", c.buyer_id)],
                seller=history[agg.Entity("seller", c.seller_id)],
            )
            for c in cases
        ]
    )


@router.get(
    "/v1/console/orders/<order_id>",
    summary="An order's decision with its explanation, review case and history",
    responses={200: documented("The order", OrderDetail), **CONSOLE_RESPONSES},
)
def order_detail(order_id: OrderId) -> OrderDetail:
    deps = console_dependencies()
    prior = deps.decisions.get_prior(order_id)
    if prior is None:
        raise NotFoundError(f"no decision for order {order_id}")
    case = deps.reviews.get(order_id)
    entities = deps.labels.entities_of(order_id) or []
    people = [e for e in entities if e.kind in {"buyer", "seller"}]
    history = _histories(deps, people)
    by_kind = {e.kind: history[e] for e in people}
    return OrderDetail(
        decision=prior.decision,
        case=case,
        buyer=by_kind.get("buyer"),
        seller=by_kind.get("seller"),
        entities=[
            OrderEntity(kind=ListedKind(e.kind), entity=e.pk, shown_as=shown(e))
            for e in entities
            if e.kind in ListedKind.__members__.values()
        ],
    )


@router.post(
    "/v1/console/reviews/<order_id>/verdict",
    summary="Settle a review case as fraud or legit; the verdict becomes a label",
    status_code=202,
    responses={
        202: documented("Settled; the Feedback is on its way to the labels", ReviewCase),
        409: documented(
            "The case was settled already: with the other verdict, or with this one and its "
            "Feedback sent (a retry of the same verdict while it is pending sends it again)"
        ),
        **CONSOLE_RESPONSES,
    },
)
def give_verdict(order_id: OrderId, request: VerdictRequest) -> ReviewCase:
    deps = console_dependencies()
    by = actor(router.current_event.raw_event)
    return record_verdict(
        deps.reviews, deps.feedback, order_id, request.verdict, by, request.note, datetime.now(UTC)
    )

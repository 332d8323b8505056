"""Ops lists: a card, device, email, address or buyer put on the allow, block or review list.

A list entry acts through the entity's profile in the Features table (`rules.evaluate` turns it
into a LIST_<LIST>_<KIND> rule on the next order that touches the entity); this module says which
entity a value names and what a change records. The entity is keyed exactly as
`features.identify` keys it (personal values as keyed hashes, email and address normalised), so a
value typed by a reviewer and the same value in an order meet in the same profile. Every change
records who made it and why; the value itself is never stored, only its key.

An address is written as the order gives it, its parts joined by ``|``:
``country|region|city|postal code|street`` (e.g. ``RU|RU-MOW|Moscow|125009|ul. Tverskaya 7``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from dozor.domain.aggregates import Entity
from dozor.domain.errors import ConflictError, InvalidInputError
from dozor.domain.fraud.features import PERSONAL_KINDS
from dozor.domain.privacy import PiiHasher, normalise


class ListName(StrEnum):
    ALLOW = "allow"  # approve whatever the model says (a known good wholesale buyer)
    BLOCK = "block"  # decline
    REVIEW = "review"  # always send to a reviewer


class ListedKind(StrEnum):
    CARD = "card"
    DEVICE = "device"
    EMAIL = "email"
    ADDRESS = "address"
    BUYER = "buyer"


ADDRESS_PARTS = 5  # country, region, city, postal code, street


def entity_of(kind: ListedKind, value: str, hasher: PiiHasher) -> Entity:
    """The entity a typed value names, keyed as an order's would be."""
    text = value.strip()
    if kind is ListedKind.EMAIL:
        text = normalise(text)
    elif kind is ListedKind.ADDRESS:
        parts = text.split("|")
        if len(parts) != ADDRESS_PARTS or not parts[-1].strip():
            raise InvalidInputError("an address is country|region|city|postal code|street")
        text = "|".join(normalise(p) for p in parts if p.strip())
    if not text:
        raise InvalidInputError(f"the {kind.value} is empty")
    return Entity(kind.value, hasher(kind.value, text) if kind.value in PERSONAL_KINDS else text)


def parse_entity(pk: str) -> Entity:
    """The entity of a stored key (``card#<hash>``), if it is of a kind lists may hold."""
    kind, _, value = pk.partition("#")
    if kind not in ListedKind.__members__.values() or not value:
        raise InvalidInputError(f"{pk!r} is not a card, device, email, address or buyer key")
    return Entity(kind, value)


def shown(entity: Entity) -> str:
    """How a console shows an entity: ids as they are, personal values by a short prefix of their hash."""
    if entity.kind in PERSONAL_KINDS:
        return f"{entity.kind} {entity.value[:10]}…"
    return f"{entity.kind} {entity.value}"


class ListChange(BaseModel):
    """One change of an entity's list membership: the audit trail keeps every one."""

    model_config = ConfigDict(frozen=True)

    entity: str  # the entity's key (pk): personal values are keyed hashes
    kind: ListedKind
    shown_as: str
    list: ListName | None  # None: taken off every list
    previous: ListName | None
    by: str
    reason: str
    at: datetime
    order_id: str | None = None  # the order the entity was taken from, when it was


@dataclass(frozen=True)
class ListEntry:
    """Where an entity stands now, and the change that put it there."""

    change: ListChange
    changes: int  # how many changes the entity has had (the entry's version)
    applied: bool  # whether the scoring profile has it yet


class ListRecords(Protocol):
    """The audited record of list changes (`dozor.adapters.dynamodb.lists`)."""

    def current(self, entity: str) -> ListEntry | None: ...

    def record(self, change: ListChange, changes_before: int) -> ListEntry: ...

    def applied(self, entity: str, changes: int) -> None: ...


class ProfileLists(Protocol):
    """Where scoring reads list membership: the entity's profile (`DynamoDecisionStore`)."""

    def set_list_status(self, pk: str, status: str | None, change: int | None = None) -> None:
        """Set the status, unless a change numbered above `change` is there (ConflictError)."""
        ...


class ListKeeper:
    """Changes an entity's list membership: recorded (who, why) first, then applied to scoring.

    Recorded first, so nothing takes effect without its audit record; if applying fails the entry
    stays ``applied: false`` and the same change made again applies it. The profile write carries
    the change's number, so a change whose write arrives after a later one's is dropped there.
    """

    def __init__(self, records: ListRecords, profiles: ProfileLists) -> None:
        self._records = records
        self._profiles = profiles

    def change(
        self,
        entity: Entity,
        target: ListName | None,
        *,
        by: str,
        reason: str,
        at: datetime,
        order_id: str | None = None,
    ) -> ListEntry:
        current = self._records.current(entity.pk)
        change = ListChange(
            entity=entity.pk,
            kind=ListedKind(entity.kind),
            shown_as=shown(entity),
            list=target,
            previous=current.change.list if current else None,
            by=by,
            reason=reason,
            at=at,
            order_id=order_id,
        )
        entry = self._records.record(change, current.changes if current else 0)
        try:
            # Numbered: of two changes applied at once, the later one stays on the profile even
            # if the earlier one's write lands last.
            self._profiles.set_list_status(entity.pk, target.value if target else None, entry.changes)
        except ConflictError:
            return entry  # superseded by a later change, already on the profile (not applied)
        self._records.applied(entity.pk, entry.changes)
        return replace(entry, applied=True)

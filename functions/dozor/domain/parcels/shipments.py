"""Parcels and carrier scans: the shipment event contract and the parcel state machine (pure).

Carriers report scans late, twice and out of order. A parcel is therefore never updated by
"applying the next event": it is recomputed from the whole set of scans it has seen, deduplicated
by `event_id` and put in a canonical order `(occurred_at, stage rank, event_id)`. The status is a
fold over that order in which terminal states absorb everything except a more final terminal
(a parcel declared LOST that is later DELIVERED was found) and a manifest re-send (INFO_RECEIVED)
never moves a parcel that has already moved. Since the input is a set, any permutation or
duplication of the same scans gives the same parcel, and a late scan that happened before the
latest one can add history but never move the status backwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from dozor.domain.contracts import Id, Instant, ShortText

DEFAULT_ORIGIN = "CN"


class ParcelStatus(StrEnum):
    INFO_RECEIVED = "INFO_RECEIVED"  # the seller printed a label; the carrier has the manifest
    IN_TRANSIT = "IN_TRANSIT"
    CUSTOMS = "CUSTOMS"
    OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
    DELIVERY_FAILED = "DELIVERY_FAILED"
    AVAILABLE_FOR_PICKUP = "AVAILABLE_FOR_PICKUP"
    DELIVERED = "DELIVERED"
    EXCEPTION = "EXCEPTION"  # damaged, held, address problem: the carrier says something is wrong
    RETURNED = "RETURNED"
    LOST = "LOST"


TERMINAL = frozenset({ParcelStatus.DELIVERED, ParcelStatus.RETURNED, ParcelStatus.LOST})

# Breaks ties between scans stamped with the same instant: the later stage is taken as the later scan.
STAGE_RANK: Mapping[ParcelStatus, int] = {
    ParcelStatus.INFO_RECEIVED: 0,
    ParcelStatus.IN_TRANSIT: 1,
    ParcelStatus.CUSTOMS: 2,
    ParcelStatus.OUT_FOR_DELIVERY: 3,
    ParcelStatus.DELIVERY_FAILED: 4,
    ParcelStatus.AVAILABLE_FOR_PICKUP: 5,
    ParcelStatus.EXCEPTION: 6,
    ParcelStatus.LOST: 7,
    ParcelStatus.RETURNED: 8,
    ParcelStatus.DELIVERED: 9,
}

# Among terminal states, which one a later terminal scan may replace: a lost parcel can turn up
# (returned or delivered), a returned one can still be delivered, a delivered one is done.
_FINALITY: Mapping[ParcelStatus, int] = {
    ParcelStatus.LOST: 1,
    ParcelStatus.RETURNED: 2,
    ParcelStatus.DELIVERED: 3,
}


class ScanLocation(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    country: ShortText | None = None
    region: ShortText | None = None
    facility: ShortText | None = None


class ShipmentEvent(BaseModel):
    """One carrier scan as it arrives on the shipment events queue (DESIGN.md § Contracts)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Id
    parcel_id: Id
    order_id: Id
    carrier: Id
    status: ParcelStatus
    occurred_at: Instant
    location: ScanLocation | None = None
    declared_value: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    currency: ShortText | None = None
    category: ShortText | None = None
    # Optional additions (backward compatible): the carrier's manifest knows where the parcel
    # comes from and goes to, and the lane needs both; the merchant feeds the seller's loss rate.
    origin_country: ShortText | None = None
    destination_region: ShortText | None = None
    seller_id: Id | None = None


@dataclass(frozen=True, slots=True)
class Lane:
    """Where a parcel travels and with whom: the unit its deadlines are learned for."""

    carrier: str
    origin: str
    destination_region: str | None

    def key(self) -> str:
        return f"{self.carrier}|{self.origin}|{self.destination_region or '?'}"


@dataclass(frozen=True, slots=True)
class ScanRecord:
    """A scan as the parcel keeps it: what happened, when, where, and the manifest it carried."""

    event_id: str
    status: ParcelStatus
    occurred_at: datetime
    carrier: str
    country: str | None = None
    region: str | None = None
    facility: str | None = None
    declared_value: float | None = None
    currency: str | None = None
    category: str | None = None
    origin_country: str | None = None
    destination_region: str | None = None
    seller_id: str | None = None

    @property
    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.occurred_at, STAGE_RANK[self.status], self.event_id)

    @classmethod
    def of(cls, event: ShipmentEvent) -> ScanRecord:
        location = event.location or ScanLocation()
        return cls(
            event_id=event.event_id,
            status=event.status,
            occurred_at=event.occurred_at,
            carrier=event.carrier,
            country=location.country,
            region=location.region,
            facility=location.facility,
            declared_value=event.declared_value,
            currency=event.currency,
            category=event.category,
            origin_country=event.origin_country,
            destination_region=event.destination_region,
            seller_id=event.seller_id,
        )

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict without empty fields (what a store persists)."""
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "status": self.status.value,
            "occurred_at": self.occurred_at.isoformat(),
            "carrier": self.carrier,
        }
        for name in _OPTIONAL_SCAN_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ScanRecord:
        value = record.get("declared_value")
        return cls(
            event_id=str(record["event_id"]),
            status=ParcelStatus(record["status"]),
            occurred_at=datetime.fromisoformat(str(record["occurred_at"])),
            carrier=str(record["carrier"]),
            declared_value=None if value is None else float(value),
            **{
                name: (None if record.get(name) is None else str(record[name]))
                for name in _OPTIONAL_SCAN_FIELDS
                if name != "declared_value"
            },
        )


_OPTIONAL_SCAN_FIELDS = (
    "country",
    "region",
    "facility",
    "declared_value",
    "currency",
    "category",
    "origin_country",
    "destination_region",
    "seller_id",
)


@dataclass(frozen=True, slots=True)
class Parcel:
    """A parcel's state: a pure function of its scans (plus the deadlines its due time comes from)."""

    parcel_id: str
    order_id: str
    carrier: str
    lane: Lane
    status: ParcelStatus
    scans: tuple[ScanRecord, ...]  # canonical order, one per event_id
    first_scan_at: datetime
    last_scan_at: datetime
    next_scan_due: datetime | None  # None once terminal: nothing more is expected
    declared_value: float | None
    currency: str | None
    category: str | None
    seller_id: str | None
    customs_entered_at: datetime | None
    customs_cleared_at: datetime | None  # first scan after customs that is not a customs scan
    failed_attempts: int
    exceptions: int
    version: int  # bumped on every change; stores write conditionally on it
    order_fraud_score: float | None = None  # the order's fraud score, set by whoever creates the parcel

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def status_since(self) -> datetime:
        """When the current status was first reported."""
        return next(s.occurred_at for s in self.scans if s.status == self.status)

    def customs_dwell(self, now: datetime) -> timedelta | None:
        """Time spent in customs so far (or in total, once cleared); None if never there."""
        if self.customs_entered_at is None:
            return None
        end = self.customs_cleared_at or (now if self.status == ParcelStatus.CUSTOMS else self.last_scan_at)
        return max(end - self.customs_entered_at, timedelta(0))

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict of the whole parcel (derived fields included, for indexes and readers)."""
        return {
            "parcel_id": self.parcel_id,
            "order_id": self.order_id,
            "carrier": self.carrier,
            "lane": self.lane.key(),
            "origin_country": self.lane.origin,
            "destination_region": self.lane.destination_region,
            "status": self.status.value,
            "scans": [s.to_record() for s in self.scans],
            "first_scan_at": self.first_scan_at.isoformat(),
            "last_scan_at": self.last_scan_at.isoformat(),
            "next_scan_due": None if self.next_scan_due is None else self.next_scan_due.isoformat(),
            "declared_value": self.declared_value,
            "currency": self.currency,
            "category": self.category,
            "seller_id": self.seller_id,
            "customs_entered_at": _iso(self.customs_entered_at),
            "customs_cleared_at": _iso(self.customs_cleared_at),
            "failed_attempts": self.failed_attempts,
            "exceptions": self.exceptions,
            "version": self.version,
            "order_fraud_score": self.order_fraud_score,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Parcel:
        """The parcel a `to_record` dict describes (numbers may come back as Decimal)."""
        scans = tuple(ScanRecord.from_record(s) for s in record["scans"])
        version = int(record.get("version", 1))
        fraud = record.get("order_fraud_score")
        due = record.get("next_scan_due")
        parcel = build_parcel(
            str(record["parcel_id"]),
            str(record["order_id"]),
            scans,
            version=version,
            order_fraud_score=None if fraud is None else float(fraud),
        )
        # The due time was computed with the deadlines in force when it was written; keep it.
        return replace(parcel, next_scan_due=None if due is None else datetime.fromisoformat(str(due)))


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def fold_status(statuses: Iterable[ParcelStatus]) -> ParcelStatus:
    """The status a parcel ends in after these scan statuses, given in canonical order."""
    iterator = iter(statuses)
    status = next(iterator)
    for scanned in iterator:
        if status in TERMINAL:
            if scanned in TERMINAL and _FINALITY[scanned] > _FINALITY[status]:
                status = scanned
        elif scanned == ParcelStatus.INFO_RECEIVED:
            continue  # a re-sent manifest says nothing about where the parcel is now
        else:
            status = scanned
    return status


def _first(scans: Iterable[ScanRecord], name: str) -> Any:
    return next((v for s in scans if (v := getattr(s, name)) is not None), None)


def canonical(scans: Iterable[ScanRecord]) -> tuple[ScanRecord, ...]:
    """Scans deduplicated by event_id (the canonically first copy wins) in canonical order."""
    unique: dict[str, ScanRecord] = {}
    for scan in sorted(scans, key=lambda s: s.sort_key):
        unique.setdefault(scan.event_id, scan)
    return tuple(unique.values())


class ScanDeadlines(Protocol):
    """When a parcel's next scan is due (`lanes.LaneDeadlines` learns it from delivered parcels)."""

    def due_after(self, lane: Lane, status: ParcelStatus) -> timedelta: ...


def build_parcel(
    parcel_id: str,
    order_id: str,
    scans: Iterable[ScanRecord],
    deadlines: ScanDeadlines | None = None,
    *,
    version: int = 1,
    order_fraud_score: float | None = None,
) -> Parcel:
    """The parcel its scans describe. Without deadlines, `next_scan_due` is left None."""
    ordered = canonical(scans)
    if not ordered:
        raise ValueError(f"parcel {parcel_id} has no scans")
    status = fold_status(s.status for s in ordered)
    first = ordered[0]
    lane = Lane(
        carrier=first.carrier,
        origin=_first(ordered, "origin_country") or DEFAULT_ORIGIN,
        destination_region=_first(ordered, "destination_region"),
    )
    last_scan_at = max(s.occurred_at for s in ordered)
    customs_entered_at = next((s.occurred_at for s in ordered if s.status == ParcelStatus.CUSTOMS), None)
    customs_cleared_at = None
    if customs_entered_at is not None:
        customs_cleared_at = next(
            (
                s.occurred_at
                for s in ordered
                if s.occurred_at > customs_entered_at
                and s.status not in (ParcelStatus.CUSTOMS, ParcelStatus.INFO_RECEIVED, ParcelStatus.EXCEPTION)
            ),
            None,
        )
    next_due = None
    if deadlines is not None and status not in TERMINAL:
        next_due = last_scan_at + deadlines.due_after(lane, status)
    return Parcel(
        parcel_id=parcel_id,
        order_id=order_id,
        carrier=first.carrier,
        lane=lane,
        status=status,
        scans=ordered,
        first_scan_at=first.occurred_at,
        last_scan_at=last_scan_at,
        next_scan_due=next_due,
        declared_value=_first(ordered, "declared_value"),
        currency=_first(ordered, "currency"),
        category=_first(ordered, "category"),
        seller_id=_first(ordered, "seller_id"),
        customs_entered_at=customs_entered_at,
        customs_cleared_at=customs_cleared_at,
        failed_attempts=sum(s.status == ParcelStatus.DELIVERY_FAILED for s in ordered),
        exceptions=sum(s.status == ParcelStatus.EXCEPTION for s in ordered),
        version=version,
        order_fraud_score=order_fraud_score,
    )


def apply_scans(parcel: Parcel | None, events: Sequence[ShipmentEvent], deadlines: ScanDeadlines) -> Parcel:
    """The parcel after these scans: the same set of scans gives the same parcel in any order.

    Returns `parcel` itself (same version) when the events add nothing new, so a store can skip
    the write; otherwise the version is one more than `parcel`'s (1 for a new parcel). Raises
    ValueError for an event of another parcel, or for no events and no parcel.
    """
    if parcel is None and not events:
        raise ValueError("no parcel and no scans")
    parcel_id = parcel.parcel_id if parcel is not None else events[0].parcel_id
    order_id = parcel.order_id if parcel is not None else events[0].order_id
    strangers = sorted({e.parcel_id for e in events if e.parcel_id != parcel_id})
    if strangers:
        raise ValueError(f"scans of parcels {strangers} cannot be applied to parcel {parcel_id}")
    existing = parcel.scans if parcel is not None else ()
    merged = canonical((*existing, *(ScanRecord.of(e) for e in events)))
    if parcel is not None and merged == parcel.scans:
        return parcel
    return build_parcel(
        parcel_id,
        order_id,
        merged,
        deadlines,
        version=parcel.version + 1 if parcel is not None else 1,
        order_fraud_score=parcel.order_fraud_score if parcel is not None else None,
    )

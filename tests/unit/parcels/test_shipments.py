"""The parcel state machine: scans arrive late, twice and out of order; the parcel must not care."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.shipments import (
    TERMINAL,
    Parcel,
    ParcelStatus,
    ScanRecord,
    ShipmentEvent,
    apply_scans,
)

T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
DEADLINES = LaneDeadlines()  # no data: the fixed defaults


def scan(
    event_id: str, status: ParcelStatus, hours: float, parcel_id: str = "p-1", **extra: Any
) -> ShipmentEvent:
    return ShipmentEvent.model_validate(
        {
            "event_id": event_id,
            "parcel_id": parcel_id,
            "order_id": "o-1",
            "carrier": "cainiao",
            "status": status,
            "occurred_at": T0 + timedelta(hours=hours),
            "destination_region": "RU-KHA",
            "declared_value": 120.0,
            "currency": "CNY",
            "category": "electronics",
            **extra,
        }
    )


JOURNEY = [
    scan("e1", ParcelStatus.INFO_RECEIVED, 0),
    scan("e2", ParcelStatus.IN_TRANSIT, 20),
    scan("e3", ParcelStatus.IN_TRANSIT, 70),
    scan("e4", ParcelStatus.CUSTOMS, 200),
    scan("e5", ParcelStatus.IN_TRANSIT, 290),
    scan("e6", ParcelStatus.OUT_FOR_DELIVERY, 400),
    scan("e7", ParcelStatus.DELIVERY_FAILED, 408),
    scan("e8", ParcelStatus.OUT_FOR_DELIVERY, 430),
    scan("e9", ParcelStatus.DELIVERED, 436),
]


def without_version(parcel: Parcel) -> dict[str, Any]:
    record = parcel.to_record()
    record.pop("version")
    return record


def test_a_journey_in_order_ends_delivered_with_its_history() -> None:
    parcel = apply_scans(None, JOURNEY, DEADLINES)
    assert parcel.status == ParcelStatus.DELIVERED
    assert [s.event_id for s in parcel.scans] == [e.event_id for e in JOURNEY]
    assert parcel.next_scan_due is None
    assert parcel.failed_attempts == 1
    assert parcel.customs_entered_at == T0 + timedelta(hours=200)
    assert parcel.customs_cleared_at == T0 + timedelta(hours=290)
    assert parcel.lane.key() == "cainiao|CN|RU-KHA"
    assert parcel.version == 1


def test_a_stale_scan_adds_history_but_never_moves_the_parcel_back() -> None:
    parcel = apply_scans(None, JOURNEY[:6], DEADLINES)
    assert parcel.status == ParcelStatus.OUT_FOR_DELIVERY
    late = apply_scans(parcel, [scan("e-late", ParcelStatus.IN_TRANSIT, 100)], DEADLINES)
    assert late.status == ParcelStatus.OUT_FOR_DELIVERY
    assert len(late.scans) == 7
    assert late.version == parcel.version + 1
    assert late.next_scan_due == parcel.next_scan_due


def test_a_duplicate_changes_nothing() -> None:
    parcel = apply_scans(None, JOURNEY[:4], DEADLINES)
    again = apply_scans(parcel, [JOURNEY[1], JOURNEY[3]], DEADLINES)
    assert again is parcel


def test_a_delivered_parcel_stays_delivered_whatever_comes_after() -> None:
    parcel = apply_scans(None, JOURNEY, DEADLINES)
    after = apply_scans(
        parcel, [scan("x1", ParcelStatus.EXCEPTION, 500), scan("x2", ParcelStatus.LOST, 900)], DEADLINES
    )
    assert after.status == ParcelStatus.DELIVERED


def test_a_lost_parcel_that_turns_up_is_delivered() -> None:
    parcel = apply_scans(None, [*JOURNEY[:4], scan("lost", ParcelStatus.LOST, 900)], DEADLINES)
    assert parcel.status == ParcelStatus.LOST and parcel.next_scan_due is None
    found = apply_scans(parcel, [scan("found", ParcelStatus.DELIVERED, 1000)], DEADLINES)
    assert found.status == ParcelStatus.DELIVERED


def test_a_resent_manifest_does_not_move_a_moving_parcel() -> None:
    parcel = apply_scans(
        None, [*JOURNEY[:3], scan("manifest-again", ParcelStatus.INFO_RECEIVED, 80)], DEADLINES
    )
    assert parcel.status == ParcelStatus.IN_TRANSIT


def test_next_scan_is_due_after_the_last_scan_by_the_lane_norm() -> None:
    parcel = apply_scans(None, JOURNEY[:4], DEADLINES)
    assert parcel.next_scan_due == parcel.last_scan_at + DEADLINES.due_after(
        parcel.lane, ParcelStatus.CUSTOMS
    )


def test_scans_of_another_parcel_are_refused() -> None:
    parcel = apply_scans(None, JOURNEY[:2], DEADLINES)
    with pytest.raises(ValueError, match="p-2"):
        apply_scans(parcel, [scan("z", ParcelStatus.IN_TRANSIT, 30, parcel_id="p-2")], DEADLINES)


def test_a_parcel_survives_its_record_round_trip() -> None:
    parcel = apply_scans(None, JOURNEY[:5], DEADLINES)
    assert Parcel.from_record(parcel.to_record()) == parcel


def _as_stored(value: Any) -> Any:
    """What a record looks like read back from DynamoDB: JSON, with numbers as Decimal."""
    return json.loads(json.dumps(value), parse_float=Decimal, parse_int=Decimal)


@pytest.mark.parametrize("scans", [1, 4, 5, 7, len(JOURNEY)])
def test_every_field_survives_storage_at_every_stage(scans: int) -> None:
    # Given a parcel at some stage, with a later version, its order's fraud score and a due time
    # written under other deadlines than today's
    parcel = replace(
        apply_scans(None, JOURNEY[:scans], DEADLINES),
        version=7,
        order_fraud_score=0.8125,
        next_scan_due=datetime(2026, 12, 24, 6, 30, tzinfo=UTC),
    )
    if parcel.status in TERMINAL:
        parcel = replace(parcel, next_scan_due=None)
    # When it is stored and read back
    back = Parcel.from_record(_as_stored(parcel.to_record()))
    # Then it is the same parcel, derived fields and all
    assert back == parcel
    assert (back.version, back.order_fraud_score, back.next_scan_due) == (
        parcel.version,
        parcel.order_fraud_score,
        parcel.next_scan_due,
    )
    assert back.customs_entered_at == parcel.customs_entered_at
    assert back.customs_cleared_at == parcel.customs_cleared_at
    assert back.failed_attempts == parcel.failed_attempts


def test_a_malformed_event_is_rejected_with_the_field() -> None:
    with pytest.raises(ValueError, match="status"):
        ShipmentEvent.model_validate({**JOURNEY[0].model_dump(), "status": "TELEPORTED"})


statuses = st.sampled_from(list(ParcelStatus))
# Few distinct instants, so ties on occurred_at (and their tie-breaks) are common.
scan_lists = st.lists(
    st.tuples(statuses, st.integers(min_value=0, max_value=12)), min_size=1, max_size=12
).map(lambda rows: [scan(f"e{i}", status, hours * 24) for i, (status, hours) in enumerate(rows)])


@settings(max_examples=200, deadline=None)
@given(data=st.data(), scans=scan_lists)
def test_any_permutation_and_duplication_of_the_scans_ends_in_the_same_parcel(
    data: st.DataObject, scans: list[ShipmentEvent]
) -> None:
    reference = apply_scans(None, scans, DEADLINES)
    shuffled = data.draw(st.permutations(scans + data.draw(st.lists(st.sampled_from(scans), max_size=6))))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(shuffled)), max_size=3)))
    parcel: Parcel | None = None
    for start, end in zip([0, *cuts], [*cuts, len(shuffled)], strict=True):
        if start < end:
            parcel = apply_scans(parcel, shuffled[start:end], DEADLINES)
    assert parcel is not None
    assert without_version(parcel) == without_version(reference)


@settings(max_examples=200, deadline=None)
@given(scans=scan_lists, late=st.tuples(statuses, st.integers(min_value=0, max_value=12)))
def test_a_scan_older_than_the_latest_never_moves_the_parcel_backwards(
    scans: list[ShipmentEvent], late: tuple[ParcelStatus, int]
) -> None:
    parcel = apply_scans(None, scans, DEADLINES)
    status, hours = late
    moves = [s.occurred_at for s in parcel.scans if s.status != ParcelStatus.INFO_RECEIVED]
    if not moves or T0 + timedelta(days=hours) >= max(moves) or status in TERMINAL:
        return  # only non-terminal news strictly older than the parcel's latest movement
    after = apply_scans(parcel, [scan("late", status, hours * 24)], DEADLINES)
    assert after.status == parcel.status


def test_scan_records_keep_the_manifest() -> None:
    record = ScanRecord.of(JOURNEY[0])
    assert ScanRecord.from_record(record.to_record()) == record


def test_what_a_scan_says_reaches_the_parcel() -> None:
    # Given a manifest scan carrying everything the contract allows, and a bare one after it
    manifest = scan(
        "m1",
        ParcelStatus.INFO_RECEIVED,
        0,
        location={"country": "CN", "region": "Guangdong", "facility": "SZX sorting"},
        origin_country="CN",
        destination_region="RU-YAK",
        seller_id="s-9",
        declared_value=310.5,
        currency="CNY",
        category="toys",
    )
    bare = ShipmentEvent.model_validate(
        {
            "event_id": "m2",
            "parcel_id": "p-1",
            "order_id": "o-1",
            "carrier": "cainiao",
            "status": "IN_TRANSIT",
            "occurred_at": T0 + timedelta(hours=5),
        }
    )
    parcel = apply_scans(None, [bare, manifest], DEADLINES)
    # Then the parcel knows its lane, value and merchant, and each scan where it was made
    assert (parcel.lane.origin, parcel.lane.destination_region) == ("CN", "RU-YAK")
    assert (parcel.declared_value, parcel.currency, parcel.category) == (310.5, "CNY", "toys")
    assert parcel.seller_id == "s-9"
    first, second = parcel.scans
    assert (first.country, first.region, first.facility) == ("CN", "Guangdong", "SZX sorting")
    assert (second.country, second.region, second.facility, second.declared_value) == (None, None, None, None)
    # And a scan without a declared value survives storage as one
    assert ScanRecord.from_record(_as_stored(second.to_record())) == second


def test_the_stored_record_carries_the_fields_indexes_and_readers_use() -> None:
    parcel = replace(apply_scans(None, JOURNEY[:6], DEADLINES), version=4, order_fraud_score=0.25)
    record = parcel.to_record()
    assert record == record | {
        "parcel_id": "p-1",
        "order_id": "o-1",
        "carrier": "cainiao",
        "lane": parcel.lane.key(),
        "origin_country": parcel.lane.origin,
        "destination_region": "RU-KHA",
        "status": "OUT_FOR_DELIVERY",
        "first_scan_at": T0.isoformat(),
        "last_scan_at": (T0 + timedelta(hours=400)).isoformat(),
        "next_scan_due": parcel.next_scan_due.isoformat() if parcel.next_scan_due else None,
        "declared_value": 120.0,
        "currency": "CNY",
        "category": "electronics",
        "seller_id": None,
        "customs_entered_at": (T0 + timedelta(hours=200)).isoformat(),
        "customs_cleared_at": (T0 + timedelta(hours=290)).isoformat(),
        "failed_attempts": 0,
        "exceptions": 0,
        "version": 4,
        "order_fraud_score": 0.25,
    }
    assert len(record["scans"]) == 6


def test_later_scans_keep_what_the_parcel_already_knows() -> None:
    # Given a stored parcel that carries its order's fraud score
    stored = replace(apply_scans(None, JOURNEY[:2], DEADLINES), order_fraud_score=0.6)
    # When a later scan arrives, even one whose manifest names another order
    later = apply_scans(stored, [scan("e3", ParcelStatus.IN_TRANSIT, 70, order_id="o-other")], DEADLINES)
    # Then the parcel keeps its order and its fraud score, one version on
    assert (later.order_id, later.order_fraud_score, later.version) == ("o-1", 0.6, stored.version + 1)
    # And nothing new is the same parcel; no parcel and no scans is an error
    assert apply_scans(later, [], DEADLINES) is later
    with pytest.raises(ValueError, match="no parcel and no scans"):
        apply_scans(None, [], DEADLINES)

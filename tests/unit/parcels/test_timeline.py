"""A parcel's timeline: each scan's stage against the lane's due and stalled limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dozor.domain.parcels.lanes import LaneDeadlines, StageNorm
from dozor.domain.parcels.shipments import ParcelStatus, ShipmentEvent, apply_scans
from dozor.domain.parcels.timeline import timeline

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
# Every stage: the next scan is due within a day, stalled after three.
DEADLINES = LaneDeadlines({"*": {s.value: StageNorm(24.0, 72.0, 100) for s in ParcelStatus}})


def parcel(*stages: tuple[str, float]) -> object:
    events = [
        ShipmentEvent.model_validate(
            {
                "event_id": f"e-{n}",
                "parcel_id": "LP-1",
                "order_id": "o-1",
                "carrier": "CAINIAO",
                "status": status,
                "occurred_at": T0 + timedelta(days=day),
                "origin_country": "CN",
                "destination_region": "RU-KAM",
            }
        )
        for n, (status, day) in enumerate(stages)
    ]
    return apply_scans(None, events, DEADLINES)


def test_a_stage_past_its_stalled_limit_is_late_and_the_deadline_is_the_current_stages() -> None:
    stuck = parcel(("INFO_RECEIVED", 0), ("IN_TRANSIT", 1), ("CUSTOMS", 5))
    now = T0 + timedelta(days=6)
    drawn = timeline(stuck, DEADLINES, now)  # type: ignore[arg-type]
    assert [s.status for s in drawn.stages] == ["INFO_RECEIVED", "IN_TRANSIT", "CUSTOMS"]
    assert [s.late for s in drawn.stages] == [False, True, False]  # 4 days in transit > 3
    assert drawn.stages[1].due_by == T0 + timedelta(days=2)
    assert drawn.stages[1].ended_at == T0 + timedelta(days=5)
    assert drawn.deadline == T0 + timedelta(days=8)  # the customs scan + 3 days
    assert drawn.stages[-1].ended_at is None
    later = timeline(stuck, DEADLINES, T0 + timedelta(days=9))  # type: ignore[arg-type]
    assert later.stages[-1].late  # still in customs past its limit


def test_a_delivered_parcel_has_no_deadline_and_its_last_stage_none() -> None:
    done = parcel(("INFO_RECEIVED", 0), ("IN_TRANSIT", 1), ("DELIVERED", 2))
    drawn = timeline(done, DEADLINES, T0 + timedelta(days=30))  # type: ignore[arg-type]
    assert drawn.deadline is None
    assert drawn.stages[-1].stalled_by is None and not drawn.stages[-1].late
    assert not any(s.late for s in drawn.stages)

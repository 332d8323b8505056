"""The demo's parcel traffic and how it scores the ops alerts against the simulator's truth."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from dozor.domain.clock import DAY
from dozor_training.demo import (
    SCAN_POISON_EVERY,
    START,
    ClaimFeed,
    ScanFeed,
    at,
    parcel_alert_summary,
    parcels_end,
)
from dozor_training.fraud.simulator import SimulationConfig, simulate
from dozor_training.parcels.simulator import LOST, SimulatedParcel, simulate_shipments


def parcels() -> list[SimulatedParcel]:
    orders = simulate(SimulationConfig(days=3, seed=5, orders_per_day=60, start=START))
    return simulate_shipments(orders, 5)


def notification(
    parcel: SimulatedParcel, kind: str, raised: float, resolved: float | None = None
) -> dict[str, Any]:
    alert = {
        "parcel_id": parcel.parcel_id,
        "type": kind,
        "raised_at": at(raised).isoformat(),
        "resolved_at": None if resolved is None else at(resolved).isoformat(),
    }
    return {"Type": "Notification", "Message": json.dumps(alert)}


def test_scans_arrive_copy_by_copy_in_arrival_order_with_a_malformed_one_now_and_then() -> None:
    shipped = parcels()
    end = parcels_end(shipped, START + timedelta(days=3))
    assert end <= START + timedelta(days=33)
    events = list(ScanFeed(shipped, end).events())
    copies = sum(1 for p in shipped for s in p.scans for r in s.received_at if r <= end.timestamp())
    bodies = [action.body for _, action in events]  # type: ignore[union-attr]
    broken = [b for b in bodies if b["status"] == "TELEPORTED"]
    assert len(bodies) - len(broken) == copies
    assert len(broken) == (copies + SCAN_POISON_EVERY // 2) // SCAN_POISON_EVERY
    assert [t for t, _ in events] == sorted(t for t, _ in events)
    # duplicates are sent as the carrier sent them: some event ids arrive twice
    ids = [b["event_id"] for b in bodies]
    assert len(set(ids)) < len(ids)
    claims = list(ClaimFeed(shipped, end).events())
    assert {a.body["kind"] for _, a in claims} <= {"item_not_received"}  # type: ignore[union-attr]
    assert all(shipped_by_id(shipped)[a.body["parcel_id"]].outcome == LOST for _, a in claims)  # type: ignore[union-attr]


def shipped_by_id(shipped: list[SimulatedParcel]) -> dict[str, SimulatedParcel]:
    return {p.parcel_id: p for p in shipped}


def test_alerts_are_scored_against_the_truth_before_the_loss_became_certain() -> None:
    shipped = parcels()
    lost = [p for p in shipped if p.outcome == LOST]
    delivered = [p for p in shipped if p.outcome == "delivered"]
    assert len(lost) >= 2
    caught, late = lost[0], lost[1]
    assert caught.loss_certain_at is not None and late.loss_certain_at is not None
    wrong = delivered[0]
    notes = [
        notification(caught, "LIKELY_LOST", caught.loss_certain_at - 4 * DAY),
        notification(caught, "STALLED", caught.loss_certain_at - 2 * DAY),
        notification(late, "STALLED", late.loss_certain_at + DAY),  # after the fact: no credit
        notification(wrong, "STALLED", wrong.shipped_at + DAY),
        # a resolution is the same alert again, not a second one
        notification(wrong, "STALLED", wrong.shipped_at + DAY, resolved=wrong.shipped_at + 2 * DAY),
    ]
    summary = parcel_alert_summary(shipped, notes, at(max(p.finished_at for p in shipped)))
    assert summary["raised_by_type"] == {"LIKELY_LOST": 1, "STALLED": 3}
    dozor = summary["dozor_stalled_or_likely_lost"]
    assert (dozor["alerted"], dozor["lost_alerted_in_time"]) == (2, 1)
    assert dozor["precision"] == 0.5
    assert dozor["recall"] == round(1 / len(lost), 4)
    assert dozor["median_lead_days"] == 4.0
    assert dozor["false_alerts_per_1000_delivered"] == round(1000 / len(delivered), 2)
    assert summary["stalled"]["median_lead_days"] == 2.0
    assert summary["baseline_no_scan_30_days"]["parcels"] == len(shipped)

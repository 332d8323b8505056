"""The shipments simulator: realistic journeys, bad data on purpose, and a truth to judge alerts by."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from dozor.domain.clock import DAY, HOUR
from dozor.domain.geography import remoteness_tier
from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.shipments import Parcel, ParcelStatus, ShipmentEvent, apply_scans
from dozor_training.fraud.simulator import SimulatedOrder, SimulationConfig, simulate
from dozor_training.parcels.simulator import (
    CARRIERS,
    DELIVERED,
    LOST,
    RETURNED,
    TIER_HOP_HOURS,
    TIER_HOPS,
    SimulatedParcel,
    simulate_shipments,
    simulated_losses,
    write_shipments,
    write_simulated_shipments,
)

CARRIER_SPEED = {name: speed for name, _, _, speed in CARRIERS}
TIER_HOP_HOURS_BY_TIER = dict(enumerate(TIER_HOP_HOURS))


@pytest.fixture(scope="module")
def orders() -> list[SimulatedOrder]:
    return simulate(SimulationConfig(days=12, orders_per_day=800, seed=3))


@pytest.fixture(scope="module")
def parcels(orders: list[SimulatedOrder]) -> list[SimulatedParcel]:
    return simulate_shipments(orders, seed=3)


def test_the_same_seed_gives_the_same_parcels(orders: list[SimulatedOrder]) -> None:
    first = simulate_shipments(orders[:300], seed=11)
    again = simulate_shipments(orders[:300], seed=11)
    assert [list(p.events()) for p in first] == [list(p.events()) for p in again]
    other = simulate_shipments(orders[:300], seed=12)
    assert [list(p.events()) for p in first] != [list(p.events()) for p in other]


def test_every_shipped_order_gets_one_parcel(
    orders: list[SimulatedOrder], parcels: list[SimulatedParcel]
) -> None:
    shipped = [o for o in orders if (o.order.get("shipping") or {}).get("region")]
    assert len(parcels) == len(shipped) < len(orders)  # gift cards and other digital goods do not ship
    assert len({p.parcel_id for p in parcels}) == len(parcels)


def test_outcomes_are_mostly_delivered_and_losses_grow_with_remoteness(
    parcels: list[SimulatedParcel],
) -> None:
    outcomes = Counter(p.outcome for p in parcels)
    assert outcomes[DELIVERED] / len(parcels) > 0.9
    assert 0.01 < outcomes[LOST] / len(parcels) < 0.08
    assert outcomes[RETURNED] > 0
    loss_by_tier: dict[int, list[bool]] = defaultdict(list)
    for p in parcels:
        loss_by_tier[remoteness_tier(p.destination_region) or 0].append(p.outcome == LOST)
    rate = {tier: sum(v) / len(v) for tier, v in loss_by_tier.items()}
    assert rate[3] > 2 * rate[0]


def test_the_truth_matches_the_scans(parcels: list[SimulatedParcel]) -> None:
    for p in parcels:
        final = p.final_parcel()
        if p.outcome == DELIVERED:
            assert final.status == ParcelStatus.DELIVERED
        elif p.outcome == RETURNED:
            assert final.status == ParcelStatus.RETURNED
        else:
            assert final.status not in (ParcelStatus.DELIVERED, ParcelStatus.RETURNED)
            assert p.loss_certain_at is not None
            assert p.loss_certain_at > max(s.occurred_at for s in p.scans if s.status != ParcelStatus.LOST)


def test_scans_arrive_late_twice_and_out_of_order(parcels: list[SimulatedParcel]) -> None:
    duplicated = sum(len(s.received_at) > 1 for p in parcels for s in p.scans)
    total = sum(len(p.scans) for p in parcels)
    assert 0.02 < duplicated / total < 0.08
    out_of_order = sum(
        any(
            a[1] > b[1]  # a later-occurring scan arrived before an earlier one
            for a, b in zip(p.arrivals(), p.arrivals()[1:], strict=False)
        )
        for p in parcels
    )
    assert out_of_order > len(parcels) * 0.02
    # Carrier outages: some scans are held back for more than a day and arrive in a burst.
    late = sum(min(s.received_at) - s.occurred_at > 86_400 for p in parcels for s in p.scans)
    assert late > total * 0.01


def test_customs_holds_and_failed_attempts_happen(parcels: list[SimulatedParcel]) -> None:
    finals = [p.final_parcel() for p in parcels[:3000]]
    assert any(f.exceptions and f.status == ParcelStatus.DELIVERED for f in finals)
    assert any(f.failed_attempts for f in finals)


def test_written_events_replayed_in_arrival_order_rebuild_each_parcel(
    parcels: list[SimulatedParcel], tmp_path: Path
) -> None:
    sample = parcels[:400]
    path = write_shipments(sample, tmp_path / "scans.jsonl")
    events = [ShipmentEvent.model_validate(json.loads(line)) for line in path.read_text().splitlines()]
    assert len(events) == sum(len(p.arrivals()) for p in sample)
    state: dict[str, Parcel] = {}
    batch: list[ShipmentEvent] = []
    deadlines = LaneDeadlines()
    for k, event in enumerate(events, start=1):
        batch.append(event)
        if k % 10 == 0 or k == len(events):  # SQS-sized batches of mixed parcels
            by_parcel: dict[str, list[ShipmentEvent]] = defaultdict(list)
            for e in batch:
                by_parcel[e.parcel_id].append(e)
            for pid, scans in by_parcel.items():
                state[pid] = apply_scans(state.get(pid), scans, deadlines)
            batch = []
    for p in sample:
        rebuilt = state[p.parcel_id]
        final = p.final_parcel()
        assert rebuilt.status == final.status
        assert [s.event_id for s in rebuilt.scans] == [s.event_id for s in final.scans]
        assert rebuilt.lane.destination_region == p.destination_region


def _domestic_hours(p: SimulatedParcel) -> list[float]:
    """Hours of each domestic hop (customs release → hub → ... → the destination city), over the
    carrier's speed, so every carrier's hops are comparable with the tier's configured median."""
    released = next(i for i, s in enumerate(p.scans) if s.facility.endswith("customs released"))
    hops = []
    k = released
    while k + 1 < len(p.scans) and p.scans[k + 1].status == ParcelStatus.IN_TRANSIT:
        hops.append((p.scans[k + 1].occurred_at - p.scans[k].occurred_at) / HOUR / CARRIER_SPEED[p.carrier])
        k += 1
    return hops


def test_domestic_hops_last_the_hours_configured_for_the_tier(parcels: list[SimulatedParcel]) -> None:
    hops: dict[int, list[float]] = defaultdict(list)
    delivery_days: dict[int, list[float]] = defaultdict(list)
    for p in parcels:
        tier = remoteness_tier(p.destination_region) or 0
        if p.outcome == DELIVERED:
            hops[tier].extend(_domestic_hours(p))
            delivery_days[tier].append((p.scans[-1].occurred_at - p.scans[0].occurred_at) / DAY)
    for tier, hours in TIER_HOP_HOURS_BY_TIER.items():
        assert len(hops[tier]) > 200
        # A lognormal hop with sigma 0.5: its median is the configured hours, half the hops within
        # 0.71x..1.40x of it.
        assert statistics.median(hops[tier]) == pytest.approx(hours, rel=0.1)
        q1, _, q3 = statistics.quantiles(hops[tier], n=4)
        assert 0.6 * hours < q1 < hours < q3 < 1.6 * hours
    # More hops of longer hours: the far regions' parcels take days longer, not minutes.
    p50 = {tier: statistics.median(days) for tier, days in delivery_days.items()}
    assert p50[0] < p50[1] < p50[2] < p50[3]
    assert p50[3] - p50[0] > 0.5 * (TIER_HOPS[3] * TIER_HOP_HOURS[3] - TIER_HOPS[0] * TIER_HOP_HOURS[0]) / 24


def test_scans_written_through_run_files_come_out_in_the_same_arrival_order(
    parcels: list[SimulatedParcel], tmp_path: Path
) -> None:
    sample = parcels[:500]
    in_memory = write_shipments(sample, tmp_path / "sorted-at-once.jsonl")
    # A few hundred lines per run: a dozen run files merged, as a million orders' scans would be.
    merged = write_shipments(iter(sample), tmp_path / "merged.jsonl", run_events=300)
    assert merged.read_bytes() == in_memory.read_bytes()
    arrivals = sorted(
        ((received, event) for p in sample for received, event in p.events()),
        key=lambda pair: (pair[0], pair[1]["event_id"]),
    )
    assert [json.loads(line) for line in merged.read_text().splitlines()] == [e for _, e in arrivals]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged.jsonl", "sorted-at-once.jsonl"]


def test_streamed_shipments_are_the_simulated_ones_with_their_losses(
    orders: list[SimulatedOrder], tmp_path: Path
) -> None:
    some = orders[:1500]
    path, losses = write_simulated_shipments(some, 5, tmp_path / "shipments.jsonl")
    held = simulate_shipments(some, 5)
    assert path.read_bytes() == write_shipments(held, tmp_path / "held.jsonl").read_bytes()
    assert losses == simulated_losses(held) and losses

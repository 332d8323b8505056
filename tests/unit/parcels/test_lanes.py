"""Lane deadlines: learned per lane from delivered parcels, borrowing from coarser groups when thin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dozor.domain.parcels.lanes import (
    DEFAULT_DUE,
    DEFAULT_STALLED,
    MIN_DUE,
    LaneDeadlines,
    learn_deadlines,
)
from dozor.domain.parcels.shipments import Lane, Parcel, ParcelStatus, ScanRecord, build_parcel

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def journey(
    parcel_id: str,
    region: str,
    transit_gaps_hours: list[float],
    carrier: str = "cainiao",
    end: ParcelStatus = ParcelStatus.DELIVERED,
) -> Parcel:
    """INFO_RECEIVED, then one IN_TRANSIT scan after each gap, then `end` a day later."""
    t = T0
    scans = [ScanRecord(f"{parcel_id}-0", ParcelStatus.INFO_RECEIVED, t, carrier, destination_region=region)]
    for k, gap in enumerate(transit_gaps_hours, start=1):
        t += timedelta(hours=gap)
        scans.append(ScanRecord(f"{parcel_id}-{k}", ParcelStatus.IN_TRANSIT, t, carrier))
    scans.append(ScanRecord(f"{parcel_id}-end", end, t + timedelta(days=1), carrier))
    return build_parcel(parcel_id, f"o-{parcel_id}", scans)


def in_transit_hours(deadlines: LaneDeadlines, lane: Lane) -> tuple[float, float]:
    due = deadlines.due_after(lane, ParcelStatus.IN_TRANSIT).total_seconds() / 3600
    stalled = deadlines.stalled_after(lane, ParcelStatus.IN_TRANSIT).total_seconds() / 3600
    return due, stalled


def test_each_lane_learns_its_own_pace() -> None:
    moscow = [journey(f"m{i}", "RU-MOW", [20.0 + i % 5, 24.0]) for i in range(40)]
    kamchatka = [journey(f"k{i}", "RU-KAM", [60.0 + i % 10, 90.0]) for i in range(40)]
    deadlines = learn_deadlines([*moscow, *kamchatka], min_samples=30)
    due_msk, stalled_msk = in_transit_hours(deadlines, Lane("cainiao", "CN", "RU-MOW"))
    due_kam, stalled_kam = in_transit_hours(deadlines, Lane("cainiao", "CN", "RU-KAM"))
    assert 24 <= due_msk <= 25  # the gaps after IN_TRANSIT scans are 24 h (and 24 h to delivery)
    assert 85 <= due_kam <= 90
    assert stalled_kam > due_kam > due_msk
    assert stalled_msk >= due_msk


def test_a_thin_lane_borrows_from_its_remoteness_tier_then_the_carrier_then_everyone() -> None:
    kamchatka = [journey(f"k{i}", "RU-KAM", [60.0, 90.0]) for i in range(40)]
    magadan = [journey(f"g{i}", "RU-MAG", [10.0, 10.0]) for i in range(3)]  # too few to stand alone
    deadlines = learn_deadlines([*kamchatka, *magadan], min_samples=30)
    tier3 = in_transit_hours(deadlines, Lane("cainiao", "CN", "RU-MAG"))
    assert tier3[0] > 60  # Magadan gets the Far East tier's norm, not its three quick parcels
    other_carrier = in_transit_hours(deadlines, Lane("cdek", "CN", "RU-MOW"))
    assert other_carrier[0] == pytest.approx(in_transit_hours(deadlines, Lane("x", "CN", None))[0])
    assert other_carrier[0] > 24  # the global group, which has mostly Kamchatka in it


def test_without_data_the_fixed_defaults_apply() -> None:
    deadlines = LaneDeadlines()
    lane = Lane("cainiao", "CN", "RU-MOW")
    assert deadlines.due_after(lane, ParcelStatus.CUSTOMS) == DEFAULT_DUE
    assert deadlines.stalled_after(lane, ParcelStatus.CUSTOMS) == DEFAULT_STALLED
    assert deadlines.loss_rate(lane) is None


def test_lost_parcels_do_not_stretch_the_deadlines_but_count_in_the_loss_rate() -> None:
    delivered = [journey(f"d{i}", "RU-MOW", [24.0, 24.0]) for i in range(36)]
    lost = [journey(f"l{i}", "RU-MOW", [24.0, 24.0 * 30], end=ParcelStatus.LOST) for i in range(4)]
    deadlines = learn_deadlines([*delivered, *lost], min_samples=30)
    lane = Lane("cainiao", "CN", "RU-MOW")
    assert in_transit_hours(deadlines, lane)[0] == pytest.approx(24.0)
    assert deadlines.loss_rate(lane) == pytest.approx(0.1)


def test_a_quick_lane_still_waits_a_minimum_before_calling_a_scan_due() -> None:
    fast = [journey(f"f{i}", "RU-MOW", [1.0, 1.0]) for i in range(40)]
    deadlines = learn_deadlines(fast, min_samples=30)
    lane = Lane("cainiao", "CN", "RU-MOW")
    assert deadlines.due_after(lane, ParcelStatus.INFO_RECEIVED) == MIN_DUE


def test_deadlines_survive_their_json() -> None:
    parcels = [journey(f"m{i}", "RU-MOW", [20.0 + i, 30.0]) for i in range(40)]
    deadlines = learn_deadlines(parcels, min_samples=30)
    assert LaneDeadlines.from_json(deadlines.to_json()) == deadlines

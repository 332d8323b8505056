"""Deadlines learned per lane: how long each stage of a parcel's journey normally stays silent.

From delivered parcels, every gap between two consecutive scans is a sample of "how long after a
scan of this stage the next one comes" on that lane. The 95th percentile is when the next scan is
*due* (the sweeper looks again and re-scores the parcel); the 99.5th, with a 1.5x margin, is when
the parcel is *stalled* (ops hear about it). The margin is there because a parcel has about ten
gaps and carriers have reporting outages: at the plain 99th percentile one delivered parcel in
five would raise a STALLED alert somewhere on its way (measured on the simulator).
Thin lanes borrow from coarser groups: the exact lane, then the carrier's parcels from the same
origin to the same remoteness tier, then the carrier, then everyone, then fixed defaults. The same
fit also keeps each group's loss rate (lost parcels among finished ones), a feature of the model.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from dozor.domain.geography import remoteness_tier
from dozor.domain.parcels.shipments import TERMINAL, Lane, Parcel, ParcelStatus

LANES_FILE = "lanes.json"
GLOBAL = "*"

# Used only where no group has enough delivered parcels to learn from (a brand-new deployment).
DEFAULT_DUE = timedelta(days=4)
DEFAULT_STALLED = timedelta(days=8)
# Even a lane whose scans come every few hours should not page ops after a quiet afternoon.
MIN_DUE = timedelta(hours=12)
MIN_STALLED = timedelta(days=1)


def lane_groups(lane: Lane) -> tuple[str, ...]:
    """Group keys from the most specific (the lane itself) to the most general."""
    tier = remoteness_tier(lane.destination_region)
    return (
        lane.key(),
        f"{lane.carrier}|{lane.origin}|tier{'?' if tier is None else tier}",
        lane.carrier,
        GLOBAL,
    )


@dataclass(frozen=True)
class StageNorm:
    due_hours: float  # p95-ish gap to the next scan
    stalled_hours: float  # p99.5 gap with a margin
    samples: int


@dataclass(frozen=True)
class LaneDeadlines:
    """Per-group, per-stage silence norms and per-group loss rates, learned from parcel histories."""

    norms: Mapping[str, Mapping[str, StageNorm]] = field(default_factory=dict)  # group → status → norm
    loss_rates: Mapping[str, tuple[float, int]] = field(default_factory=dict)  # group → (rate, parcels)
    min_samples: int = 30

    def norm(self, lane: Lane, status: ParcelStatus) -> StageNorm | None:
        """The most specific group's norm for this stage that was learned from enough parcels."""
        for group in lane_groups(lane):
            norm = self.norms.get(group, {}).get(status.value)
            if norm is not None:
                return norm
        return None

    def due_after(self, lane: Lane, status: ParcelStatus) -> timedelta:
        """How long after the last scan the next one is due."""
        norm = self.norm(lane, status)
        if norm is None:
            return DEFAULT_DUE
        return max(timedelta(hours=norm.due_hours), MIN_DUE)

    def stalled_after(self, lane: Lane, status: ParcelStatus) -> timedelta:
        """How long after the last scan a parcel counts as stalled (past the lane's deadline)."""
        norm = self.norm(lane, status)
        if norm is None:
            return DEFAULT_STALLED
        return max(timedelta(hours=norm.stalled_hours), MIN_STALLED, self.due_after(lane, status))

    def loss_rate(self, lane: Lane) -> float | None:
        """Share of finished parcels that were lost, in the most specific group with enough of them."""
        for group in lane_groups(lane):
            found = self.loss_rates.get(group)
            if found is not None:
                return found[0]
        return None

    def to_json(self) -> str:
        payload = {
            "min_samples": self.min_samples,
            "norms": {
                group: {status: [n.due_hours, n.stalled_hours, n.samples] for status, n in stages.items()}
                for group, stages in sorted(self.norms.items())
            },
            "loss_rates": {group: list(v) for group, v in sorted(self.loss_rates.items())},
        }
        return json.dumps(payload, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LaneDeadlines:
        payload: dict[str, Any] = json.loads(text)
        norms = {
            group: {status: StageNorm(float(v[0]), float(v[1]), int(v[2])) for status, v in stages.items()}
            for group, stages in payload["norms"].items()
        }
        loss_rates = {group: (float(v[0]), int(v[1])) for group, v in payload.get("loss_rates", {}).items()}
        return cls(norms, loss_rates, int(payload.get("min_samples", 30)))

    @classmethod
    def load(cls, directory: Path) -> LaneDeadlines:
        return cls.from_json((directory / LANES_FILE).read_text())


def stage_gaps(parcel: Parcel) -> list[tuple[ParcelStatus, float]]:
    """(stage, hours until the next scan) for every scan of a parcel except the last."""
    scans = parcel.scans
    return [
        (scans[i].status, (scans[i + 1].occurred_at - scans[i].occurred_at).total_seconds() / 3600.0)
        for i in range(len(scans) - 1)
        if scans[i].status not in TERMINAL
    ]


def learn_deadlines(
    parcels: Iterable[Parcel],
    min_samples: int = 30,
    due_quantile: float = 0.95,
    stalled_quantile: float = 0.995,
    stalled_margin: float = 1.5,
) -> LaneDeadlines:
    """Learn stage norms from the delivered parcels and loss rates from all finished ones.

    A group gets a norm for a stage only with at least `min_samples` gaps; others fall back.
    """
    gaps: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    finished: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # group → [lost, finished]
    for parcel in parcels:
        if not parcel.is_terminal:
            continue
        groups = lane_groups(parcel.lane)
        lost = int(parcel.status == ParcelStatus.LOST)
        for group in groups:
            finished[group][0] += lost
            finished[group][1] += 1
        if parcel.status != ParcelStatus.DELIVERED:
            continue
        for status, hours in stage_gaps(parcel):
            for group in groups:
                gaps[group][status.value].append(hours)
    norms: dict[str, dict[str, StageNorm]] = {}
    for group, stages in gaps.items():
        for stage, values in stages.items():
            if len(values) < min_samples:
                continue
            array = np.asarray(values)
            due, stalled = np.quantile(array, [due_quantile, stalled_quantile])
            norms.setdefault(group, {})[stage] = StageNorm(
                round(float(due), 3), round(float(stalled) * stalled_margin, 3), len(values)
            )
    loss_rates = {
        group: (round(lost / total, 6), total)
        for group, (lost, total) in finished.items()
        if total >= min_samples
    }
    return LaneDeadlines(norms, loss_rates, min_samples)

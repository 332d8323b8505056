"""Offline sweep over the simulated timeline: how early and how precisely would ops hear of losses?

The sweeper's view is replayed exactly: at every sweep time a parcel is what the scans that had
*arrived* by then say (late, duplicated and back-filled scans included), it is looked at only once
its next scan is overdue, and it is alerted on with the same `assess` rules (STALLED past the
lane's deadline, LIKELY_LOST above the model's threshold) that serving uses. Each alerting rule is
judged per parcel against the simulated truth:

- precision: alerted parcels that really were lost, among all alerted parcels;
- recall: lost parcels alerted *before* the loss became certain (the carrier's LOST scan arrived
  or the buyer claimed), among all lost parcels;
- lead time: how long before the loss became certain the first alert came (median, days);
- false alerts per 1,000 delivered: delivered parcels that were alerted on before delivery.

The baseline is the rule many shops run: alert when a parcel has had no scan for 30 days.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from dozor.domain.clock import DAY, HOUR
from dozor.domain.geography import remoteness_tier
from dozor.domain.parcels.alerts import BACKFILL_GRACE, FEED_QUIET_AFTER, FeedGap, effective_silence
from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.model import PARCEL_FEATURE_NAMES, ParcelLossModel, parcel_features
from dozor.domain.parcels.shipments import (
    STAGE_RANK,
    TERMINAL,
    Lane,
    Parcel,
    ParcelStatus,
    build_parcel,
    fold_status,
)
from dozor_training.parcels.simulator import DELIVERED, EPOCH, LOST, RETURNED, SimulatedParcel

SWEEP_HOURS = 6.0  # the deployed sweeper runs every few minutes; 6 h keeps the offline sweep cheap
BASELINE_SILENCE = 30 * DAY
SELLER_WINDOW = 30 * DAY
SELLER_MIN_PARCELS = 5
MAX_SWEEPS_PER_STATE = 240  # 60 days of sweeps: beyond that every rule has long spoken


def at(epoch: float) -> datetime:
    # As the parcel simulator dates its scans (EPOCH + timedelta), so features see the same instants.
    return EPOCH + timedelta(seconds=epoch)


def next_sweep(t: float, sweep: float) -> float:
    """The first sweep at or after `t` (sweeps run on a fixed grid from the epoch)."""
    return math.ceil(t / sweep) * sweep


def lane_of(p: SimulatedParcel) -> Lane:
    return Lane(p.carrier, "CN", p.destination_region)


@dataclass(frozen=True, slots=True)
class KnownState:
    """A stretch of time in which Dozor's view of a parcel did not change."""

    start: float  # when the scan that made this view arrived
    end: float  # when the next new scan arrived (or when the outcome became known)
    status: ParcelStatus
    last_scan_at: float  # epoch of the newest scan known
    known: int  # how many distinct scans were known (a prefix of first arrivals)


def known_states(p: SimulatedParcel) -> list[KnownState]:
    """Dozor's successive views of a parcel, up to the moment its outcome became known."""
    first_arrival = sorted((min(s.received_at), i) for i, s in enumerate(p.scans))
    horizon = p.finished_at
    keys: list[tuple[float, int, str, ParcelStatus]] = []
    states: list[KnownState] = []
    last = -math.inf
    for k, (arrived, i) in enumerate(first_arrival):
        if arrived >= horizon:
            break
        s = p.scans[i]
        bisect.insort(keys, (s.occurred_at, STAGE_RANK[s.status], s.event_id, s.status))
        last = max(last, s.occurred_at)
        end = first_arrival[k + 1][0] if k + 1 < len(first_arrival) else math.inf
        status = fold_status(key[3] for key in keys)
        states.append(KnownState(arrived, min(end, horizon), status, last, k + 1))
    return [s for s in states if s.end > s.start]


def parcel_known(p: SimulatedParcel, state: KnownState, deadlines: LaneDeadlines | None = None) -> Parcel:
    """The `Parcel` for a known state (its scans are the first `known` to arrive)."""
    first_arrival = sorted((min(s.received_at), i) for i, s in enumerate(p.scans))[: state.known]
    records = p.records()
    return build_parcel(p.parcel_id, p.order_id, [records[i] for _, i in first_arrival], deadlines)


class CarrierFeeds:
    """Each carrier's feed outages, found from when its scans (all parcels') reached Dozor."""

    def __init__(
        self, parcels: Sequence[SimulatedParcel], quiet_after: float = FEED_QUIET_AFTER.total_seconds()
    ):
        arrivals: dict[str, list[float]] = defaultdict(list)
        for p in parcels:
            arrivals[p.carrier].extend(r for s in p.scans for r in s.received_at)
        self.quiet_after = quiet_after
        self.gaps: dict[str, list[tuple[float, float]]] = {}
        for carrier, times in arrivals.items():
            times.sort()
            array = np.asarray(times)
            pauses = np.flatnonzero(np.diff(array) > quiet_after)
            self.gaps[carrier] = [(float(array[k]), float(array[k + 1])) for k in pauses]

    def at(self, carrier: str, since: float, now: float) -> list[FeedGap]:
        """The outages the sweeper could have seen at `now` that overlap [since, now]."""
        found = []
        for start, end in self.gaps.get(carrier, ()):
            if start >= now or end + BACKFILL_GRACE.total_seconds() < since:
                continue
            if now - start <= self.quiet_after:
                continue  # too short so far to tell from an ordinary pause
            found.append(FeedGap(at(start), at(min(end, now))))
        return found


class SellerLossRates:
    """Each seller's share of lost parcels among those whose outcome became known in the last 30 days."""

    def __init__(self, parcels: Sequence[SimulatedParcel]) -> None:
        finished: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for p in parcels:
            if p.outcome in (DELIVERED, LOST):
                finished[p.seller_id].append((p.finished_at, int(p.outcome == LOST)))
        self._times: dict[str, np.ndarray] = {}
        self._lost: dict[str, np.ndarray] = {}
        for seller, rows in finished.items():
            rows.sort()
            self._times[seller] = np.array([r[0] for r in rows])
            self._lost[seller] = np.concatenate([[0], np.cumsum([r[1] for r in rows])])

    def at(self, seller: str, t: float) -> float | None:
        times = self._times.get(seller)
        if times is None:
            return None
        lo = int(np.searchsorted(times, t - SELLER_WINDOW, side="left"))
        hi = int(np.searchsorted(times, t, side="left"))
        if hi - lo < SELLER_MIN_PARCELS:
            return None
        lost = self._lost[seller]
        return float(lost[hi] - lost[lo]) / (hi - lo)


@dataclass
class Sweep:
    """Overdue sweep points of many parcels: who, when, and the feature row the model sees."""

    parcel_index: list[int]
    times: list[float]
    rows: np.ndarray

    @property
    def size(self) -> int:
        return len(self.times)


def overdue_sweeps(
    parcels: Sequence[SimulatedParcel],
    deadlines: LaneDeadlines,
    sellers: SellerLossRates,
    fraud_scores: Mapping[str, float] | None = None,
    sweep: float = SWEEP_HOURS * HOUR,
    max_per_parcel: int | None = None,
    seed: int = 0,
) -> Sweep:
    """Every sweep at which a parcel was overdue (next scan due and not yet arrived), with features.

    `max_per_parcel` keeps an evenly spread subset per parcel (training); None keeps all (evaluation).
    """
    rng = np.random.default_rng(seed)
    index: list[int] = []
    times: list[float] = []
    rows: list[np.ndarray] = []
    for n, p in enumerate(parcels):
        lane = lane_of(p)
        points: list[tuple[float, KnownState]] = []
        for state in known_states(p):
            if state.status in TERMINAL:
                continue
            due = state.last_scan_at + deadlines.due_after(lane, state.status).total_seconds()
            g = next_sweep(max(state.start, due), sweep)
            for _ in range(MAX_SWEEPS_PER_STATE):
                if g >= state.end:
                    break
                points.append((g, state))
                g += sweep
        if max_per_parcel is not None and len(points) > max_per_parcel:
            keep = np.sort(rng.choice(len(points), max_per_parcel, replace=False))
            points = [points[int(k)] for k in keep]
        built: dict[int, Parcel] = {}
        fraud = None if fraud_scores is None else fraud_scores.get(p.order_id)
        for g, state in points:
            parcel = built.get(state.known)
            if parcel is None:
                parcel = built[state.known] = parcel_known(p, state, deadlines)
            rows.append(
                parcel_features(
                    parcel,
                    at(g),
                    deadlines,
                    seller_loss_rate_30d=sellers.at(p.seller_id, g),
                    order_fraud_score=fraud,
                )
            )
            index.append(n)
            times.append(g)
    matrix = np.vstack(rows) if rows else np.empty((0, len(PARCEL_FEATURE_NAMES)), dtype=np.float32)
    return Sweep(index, times, matrix)


def stalled_times(
    parcels: Sequence[SimulatedParcel],
    deadlines: LaneDeadlines | None,
    silence: float | None = None,
    sweep: float = SWEEP_HOURS * HOUR,
    feeds: CarrierFeeds | None = None,
) -> list[float | None]:
    """First sweep at which each parcel counts as stalled: past its lane deadline, or silent `silence` s.

    With `feeds`, silence during the carrier's feed outages does not count (as `assess` does).
    """
    out: list[float | None] = []
    for p in parcels:
        lane = lane_of(p)
        first = None
        for state in known_states(p):
            if state.status in TERMINAL:
                continue
            if silence is not None:
                limit = silence
            else:
                assert deadlines is not None
                limit = deadlines.stalled_after(lane, state.status).total_seconds()
            # STALLED needs "now > last scan + limit": the first sweep strictly after the limit.
            g = next_sweep(max(state.start, state.last_scan_at + limit + 1e-6), sweep)
            if feeds is not None:
                for _ in range(MAX_SWEEPS_PER_STATE):
                    if g >= state.end:
                        break
                    gaps = feeds.at(p.carrier, state.last_scan_at, g)
                    quiet = effective_silence(at(state.last_scan_at), at(g), gaps).total_seconds()
                    if quiet > limit:
                        break
                    g += sweep
            if g < state.end:
                first = g
                break
        out.append(first)
    return out


def first_risk_alerts(sweep: Sweep, risks: np.ndarray, threshold: float, parcels: int) -> list[float | None]:
    """First sweep at which each parcel's risk reached `threshold` (None: never)."""
    out: list[float | None] = [None] * parcels
    hits = np.flatnonzero(risks >= threshold)
    for k in hits:
        n = sweep.parcel_index[k]
        t = sweep.times[k]
        current = out[n]
        if current is None or t < current:
            out[n] = t
    return out


def earliest(*alerts: list[float | None]) -> list[float | None]:
    return [min((t for t in ts if t is not None), default=None) for ts in zip(*alerts, strict=True)]


def alert_metrics(parcels: Sequence[SimulatedParcel], first_alert: Sequence[float | None]) -> dict[str, Any]:
    """Precision, recall, median lead time and false alerts per 1,000 delivered for one alerting rule."""
    alerted = lost = caught = delivered = false_delivered = returned_alerted = 0
    leads: list[float] = []
    for p, t in zip(parcels, first_alert, strict=True):
        is_lost = p.outcome == LOST
        lost += is_lost
        delivered += p.outcome == DELIVERED
        if t is None or t >= p.finished_at:
            continue
        alerted += 1
        if is_lost:
            caught += 1
            assert p.loss_certain_at is not None
            leads.append((p.loss_certain_at - t) / DAY)
        elif p.outcome == DELIVERED:
            false_delivered += 1
        elif p.outcome == RETURNED:
            returned_alerted += 1
    return {
        "parcels": len(parcels),
        "lost": lost,
        "delivered": delivered,
        "alerted": alerted,
        "lost_alerted_in_time": caught,
        "precision": round(caught / alerted, 4) if alerted else 0.0,
        "recall": round(caught / lost, 4) if lost else 0.0,
        "median_lead_days": round(float(np.median(leads)), 2) if leads else None,
        "false_alerts_per_1000_delivered": round(1000 * false_delivered / delivered, 2) if delivered else 0.0,
        "returned_alerted": returned_alerted,
    }


def evaluate_alerts(
    parcels: Sequence[SimulatedParcel],
    model: ParcelLossModel,
    sellers: SellerLossRates,
    fraud_scores: Mapping[str, float] | None = None,
    sweep_hours: float = SWEEP_HOURS,
    feeds: CarrierFeeds | None = None,
) -> dict[str, Any]:
    """Alert metrics for the lane deadlines, the model, both together (what Dozor raises) and the baseline."""
    sweep = sweep_hours * HOUR
    deadlines = model.deadlines
    feeds = feeds or CarrierFeeds(parcels)
    sweeps = overdue_sweeps(parcels, deadlines, sellers, fraud_scores, sweep)
    risks = model.risk(sweeps.rows) if sweeps.size else np.empty(0)
    likely = first_risk_alerts(sweeps, risks, model.likely_lost_threshold, len(parcels))
    stalled = stalled_times(parcels, deadlines, sweep=sweep, feeds=feeds)
    stalled_blind = stalled_times(parcels, deadlines, sweep=sweep)
    baseline = stalled_times(parcels, None, silence=BASELINE_SILENCE, sweep=sweep)
    dozor = earliest(stalled, likely)
    tiers: dict[str, list[int]] = defaultdict(list)
    for n, p in enumerate(parcels):
        tiers[str(remoteness_tier(p.destination_region))].append(n)
    return {
        "dozor_stalled_or_likely_lost": alert_metrics(parcels, dozor),
        "stalled_lane_deadline": alert_metrics(parcels, stalled),
        "stalled_ignoring_feed_outages": alert_metrics(parcels, stalled_blind),
        "likely_lost_model": alert_metrics(parcels, likely),
        "baseline_no_scan_30_days": alert_metrics(parcels, baseline),
        # Far from the capitals parcels wait longer and get lost more often: the rules per tier.
        "by_remoteness_tier": {
            tier: {
                "dozor_stalled_or_likely_lost": alert_metrics(
                    [parcels[n] for n in rows], [dozor[n] for n in rows]
                ),
                "baseline_no_scan_30_days": alert_metrics(
                    [parcels[n] for n in rows], [baseline[n] for n in rows]
                ),
            }
            for tier, rows in sorted(tiers.items())
        },
    }

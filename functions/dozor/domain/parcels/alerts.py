"""Parcel alerts for ops: which ones should be open for a parcel now, and which have ended.

An alert's id is `<parcel_id>#<type>`, with no version or time in it, so at most one alert per
parcel and type can exist and a repeated assessment (a duplicate scan, a second sweep) finds the
one already open instead of raising another. `assess` says what should be open; `resolutions`
says which types are over whatever the model thinks (the parcel was delivered, moved on, or its
loss is already certain), so a store can close them and tell the topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.shipments import Parcel, ParcelStatus

# A LIKELY_LOST alert closes only when the risk falls well below the line that opened it, so a
# parcel whose risk hovers around the threshold does not open and close an alert every sweep.
RESOLVE_BELOW_SHARE = 0.5
CRITICAL_RISK = 0.8

# After a carrier's feed comes back, its held-back scans trickle in for a while.
BACKFILL_GRACE = timedelta(hours=12)
# A busy carrier sends scans every few seconds: hours without one mean its feed is down, not its parcels.
FEED_QUIET_AFTER = timedelta(hours=6)

CARRIER_BAD_NEWS = frozenset({ParcelStatus.EXCEPTION, ParcelStatus.RETURNED, ParcelStatus.LOST})


class AlertType(StrEnum):
    STALLED = "STALLED"  # no scan past the lane's deadline for the parcel's stage
    LIKELY_LOST = "LIKELY_LOST"  # the loss model's risk is above its threshold
    CARRIER_EXCEPTION = "CARRIER_EXCEPTION"  # the carrier reported EXCEPTION, RETURNED or LOST


class Severity(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class Alert(BaseModel):
    """One alert (DESIGN.md § Contracts plus severity, lane and a sentence for humans)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    alert_id: str
    parcel_id: str
    order_id: str
    type: AlertType
    severity: Severity
    risk: float | None
    reasons: list[str]
    lane: str
    carrier: str
    destination_region: str | None
    status: ParcelStatus
    message: str
    last_scan_at: datetime
    expected_by: datetime | None
    raised_at: datetime
    resolved_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FeedGap:
    """A stretch in which a carrier's feed delivered no scans at all: its parcels were not silent, it was."""

    start: datetime
    end: datetime  # when scans started arriving again (now, if the feed is still quiet)


def effective_silence(last_scan_at: datetime, now: datetime, feed_gaps: Sequence[FeedGap] = ()) -> timedelta:
    """Time since the last scan, not counting the carrier's feed outages (and their back-fill grace).

    On the simulator, most STALLED alerts on parcels that were then delivered came from a next
    scan that had happened but reached Dozor more than a day late; discounting the carriers' feed
    outages removes about a quarter of those (single scans reported late remain).
    """
    silence = now - last_scan_at
    covered_until = last_scan_at
    for gap in sorted(feed_gaps, key=lambda g: g.start):
        start, end = max(gap.start, covered_until), min(gap.end + BACKFILL_GRACE, now)
        if end > start:
            silence -= end - start
            covered_until = end
    return max(silence, timedelta(0))


def detect_feed_gaps(
    arrivals: Iterable[datetime], now: datetime, quiet_after: timedelta = FEED_QUIET_AFTER
) -> list[FeedGap]:
    """A carrier's feed outages from the times its scans arrived: every pause longer than `quiet_after`.

    A pause still going on at `now` is a gap that ends now.
    """
    gaps: list[FeedGap] = []
    previous: datetime | None = None
    for arrived in sorted(arrivals):
        if previous is not None and arrived - previous > quiet_after:
            gaps.append(FeedGap(previous, arrived))
        previous = arrived
    if previous is not None and now - previous > quiet_after:
        gaps.append(FeedGap(previous, now))
    return gaps


def alert_id(parcel_id: str, alert_type: AlertType) -> str:
    return f"{parcel_id}#{alert_type.value}"


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86_400
    return f"{days:.1f} days" if days < 10 else f"{days:.0f} days"


def _where(parcel: Parcel) -> str:
    region = parcel.lane.destination_region or "an unknown region"
    return f"{parcel.carrier} parcel {parcel.parcel_id} to {region}"


def _alert(
    parcel: Parcel,
    alert_type: AlertType,
    severity: Severity,
    now: datetime,
    risk: float | None,
    reasons: list[str],
    message: str,
    expected_by: datetime | None,
) -> Alert:
    return Alert(
        alert_id=alert_id(parcel.parcel_id, alert_type),
        parcel_id=parcel.parcel_id,
        order_id=parcel.order_id,
        type=alert_type,
        severity=severity,
        risk=None if risk is None else round(float(risk), 4),
        reasons=reasons,
        lane=parcel.lane.key(),
        carrier=parcel.carrier,
        destination_region=parcel.lane.destination_region,
        status=parcel.status,
        message=message,
        last_scan_at=parcel.last_scan_at,
        expected_by=expected_by,
        raised_at=now,
    )


def is_stalled(
    parcel: Parcel, now: datetime, deadlines: LaneDeadlines, feed_gaps: Sequence[FeedGap] = ()
) -> bool:
    """Silent for longer than the lane allows for the parcel's stage (never for finished parcels).

    `feed_gaps` are the carrier's recent feed outages; silence during them does not count.
    """
    if parcel.is_terminal:
        return False
    limit = deadlines.stalled_after(parcel.lane, parcel.status)
    return effective_silence(parcel.last_scan_at, now, feed_gaps) > limit


def assess(
    parcel: Parcel,
    now: datetime,
    risk: float | None,
    deadlines: LaneDeadlines,
    likely_lost_threshold: float,
    feed_gaps: Sequence[FeedGap] = (),
) -> list[Alert]:
    """The alerts that should be open for this parcel now (empty once it is delivered).

    `feed_gaps`: the carrier's recent feed outages, which do not count towards STALLED.
    """
    alerts: list[Alert] = []
    silent = now - parcel.last_scan_at
    risk_reason = [] if risk is None else [f"loss risk {risk:.0%}"]
    if parcel.status in CARRIER_BAD_NEWS:
        severity = Severity.HIGH if parcel.status == ParcelStatus.LOST else Severity.MEDIUM
        alerts.append(
            _alert(
                parcel,
                AlertType.CARRIER_EXCEPTION,
                severity,
                now,
                risk,
                [f"carrier reported {parcel.status.value}", *risk_reason],
                f"{_where(parcel)}: the carrier reported {parcel.status.value} "
                f"on {parcel.status_since:%Y-%m-%d %H:%M} UTC.",
                None,
            )
        )
    if parcel.is_terminal:
        return alerts
    stalled_after = deadlines.stalled_after(parcel.lane, parcel.status)
    deadline = parcel.last_scan_at + stalled_after
    if is_stalled(parcel, now, deadlines, feed_gaps):
        overdue = silent / stalled_after
        alerts.append(
            _alert(
                parcel,
                AlertType.STALLED,
                Severity.HIGH if overdue >= 2 else Severity.MEDIUM,
                now,
                risk,
                [
                    f"no scan for {_days(silent)} in {parcel.status.value}",
                    f"lane deadline {_days(stalled_after)}",
                    *risk_reason,
                ],
                f"{_where(parcel)} has had no scan for {_days(silent)} since {parcel.status.value}; "
                f"parcels on this lane are normally scanned again within {_days(stalled_after)}.",
                deadline,
            )
        )
    if risk is not None and risk >= likely_lost_threshold:
        alerts.append(
            _alert(
                parcel,
                AlertType.LIKELY_LOST,
                Severity.HIGH if risk >= CRITICAL_RISK else Severity.MEDIUM,
                now,
                risk,
                [f"loss risk {risk:.0%} ≥ {likely_lost_threshold:.0%}", f"silent {_days(silent)}"],
                f"{_where(parcel)} is likely lost ({risk:.0%} risk): no scan for {_days(silent)} "
                f"since {parcel.status.value}.",
                parcel.next_scan_due,
            )
        )
    return alerts


def resolutions(
    parcel: Parcel,
    now: datetime,
    deadlines: LaneDeadlines,
    risk: float | None = None,
    likely_lost_threshold: float | None = None,
    feed_gaps: Sequence[FeedGap] = (),
) -> frozenset[AlertType]:
    """Alert types whose reason is over: every type once delivered; stale ones as the parcel moves.

    LIKELY_LOST closes only on a known risk well below the threshold (or a finished parcel).
    """
    if parcel.status == ParcelStatus.DELIVERED:
        return frozenset(AlertType)
    over: set[AlertType] = set()
    if parcel.status not in CARRIER_BAD_NEWS:
        over.add(AlertType.CARRIER_EXCEPTION)
    if parcel.is_terminal:
        # Lost or returned: the carrier's word replaces the guesses.
        over.update({AlertType.STALLED, AlertType.LIKELY_LOST})
        return frozenset(over)
    if not is_stalled(parcel, now, deadlines, feed_gaps):
        over.add(AlertType.STALLED)
    if (
        risk is not None
        and likely_lost_threshold is not None
        and risk < likely_lost_threshold * RESOLVE_BELOW_SHARE
    ):
        over.add(AlertType.LIKELY_LOST)
    return frozenset(over)

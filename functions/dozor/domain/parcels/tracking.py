"""Parcel tracking: the domain service behind the shipment-events and sweeper functions.

Scans are applied to a parcel with a write conditional on the version that was read, so two
batches touching one parcel cannot lose each other's scans: the loser re-reads and re-applies.

Alerts and parcel outcomes leave through an outbox kept on the parcel itself: the write that
opens or resolves an alert, or makes a parcel LOST / DELIVERED, also adds an entry to the
parcel's outbox; the entries are then published (topic, feedback queue) and cleared. A publish
that fails leaves its entry behind and the next look at the parcel (a retried record, a later
scan, the sweeper) publishes it again: at least once, never silently lost. An alert is opened in
one transaction with a check that the parcel is still the version assessed, so an alert can never
be raised on a parcel that was delivered in the meantime.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

import numpy as np

from dozor.domain.errors import DozorError, ParcelConflictError, StoreUnavailableError
from dozor.domain.feedback import Feedback, FeedbackKind, FeedbackQueue
from dozor.domain.parcels.alerts import Alert, AlertType, FeedGap, assess, effective_silence, resolutions
from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.model import ParcelLossModel, parcel_features
from dozor.domain.parcels.shipments import Parcel, ParcelStatus, ShipmentEvent, apply_scans

# Outcomes the fraud side learns from (a lost parcel, a delivered one).
OUTCOME_FEEDBACK = {ParcelStatus.LOST: FeedbackKind.LOST, ParcelStatus.DELIVERED: FeedbackKind.DELIVERED}
SAVE_ATTEMPTS = 4
# How long a parcel's due time may be moved past "now" at most before the sweeper looks again.
DEFAULT_RESCORE_EVERY = timedelta(hours=6)


class AlertEvent(StrEnum):
    RAISED = "RAISED"
    RESOLVED = "RESOLVED"


@dataclass(frozen=True)
class StoredParcel:
    """A parcel as stored: its state plus which alerts are open and what is still to be published."""

    parcel: Parcel
    open_alerts: frozenset[AlertType] = frozenset()
    outbox: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DuePage:
    parcels: list[StoredParcel]
    next_start: dict[str, object] | None  # where the next page of the shard starts; None when done
    # Items of the page that could not be read as parcels: parcel id -> why (no personal data).
    unreadable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepCursor:
    """Where an unfinished sweep stopped: the shard and the position in it."""

    shard: int
    start: dict[str, object] | None = None


class ParcelStore(Protocol):
    shards: int

    def load_many(self, parcel_ids: Sequence[str]) -> dict[str, StoredParcel]: ...

    def load(self, parcel_id: str) -> StoredParcel | None: ...

    def save(self, parcel: Parcel, expected_version: int | None, outbox: frozenset[str]) -> StoredParcel:
        """Write the parcel if it is still at expected_version (None: new); ParcelConflictError if not."""
        ...

    def reschedule(self, parcel: Parcel, look_at: datetime) -> bool:
        """Move the sweeper's next look at this parcel version; False if the parcel changed meanwhile."""
        ...

    def clear_outbox(self, parcel_id: str, entries: frozenset[str]) -> None: ...

    def due(self, shard: int, until: datetime, limit: int, start: dict[str, object] | None) -> DuePage: ...

    def load_cursor(self) -> SweepCursor | None: ...

    def save_cursor(self, cursor: SweepCursor | None) -> None: ...


class AlertStore(Protocol):
    def open(self, parcel: Parcel, alerts: Sequence[Alert], look_at: datetime | None) -> bool:
        """Store the alerts with a check that the parcel is still this version; False if it is not."""
        ...

    def resolve(self, parcel_id: str, types: frozenset[AlertType], at: datetime) -> None: ...

    def get(self, parcel_id: str, alert_type: AlertType) -> Alert | None: ...


class AlertTopic(Protocol):
    def publish(self, alert: Alert, event: AlertEvent) -> None: ...


class CarrierFeeds(Protocol):
    """When each carrier's scans last arrived, and the outages of its feed (pauses past the quiet limit)."""

    def heard_from(self, carriers: Iterable[str], at: datetime) -> dict[str, list[FeedGap]]:
        """Note the carriers' scans arrived at `at`; their recent feed gaps (one may have just ended)."""
        ...

    def gaps(self, carrier: str, now: datetime) -> list[FeedGap]:
        """The carrier's recent feed gaps, including one still going on at `now`."""
        ...


class FraudScores(Protocol):
    def fraud_scores(self, order_ids: Sequence[str]) -> dict[str, float]:
        """The fraud scores of those orders that were decided (one batched read)."""
        ...


def _why(error: Exception) -> str:
    """What went wrong with one parcel, short (parcels hold no personal data)."""
    return f"{type(error).__name__}: {error}"[:300]


def outbox_entry(event: AlertEvent | str, name: str) -> str:
    return f"{event}:{name}"


@dataclass
class SweepReport:
    looked_at: int = 0
    raised: dict[str, int] = field(default_factory=dict)
    resolved: int = 0
    pages: int = 0
    shards_done: int = 0
    finished: bool = False  # every shard was swept; False: a cursor was saved for the next run
    # Parcels skipped because something about them alone failed: parcel id -> why. They stay
    # due, so a later sweep (after a fix, for a poison one) looks at them again.
    poisoned: dict[str, str] = field(default_factory=dict)  # unreadable, or failing in code
    deferred: dict[str, str] = field(default_factory=dict)  # a store call for that parcel failed


class ParcelTracking:
    def __init__(
        self,
        parcels: ParcelStore,
        alerts: AlertStore,
        topic: AlertTopic,
        feedback: FeedbackQueue,
        fraud_scores: FraudScores,
        feeds: CarrierFeeds,
        deadlines: LaneDeadlines,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rescore_every: timedelta = DEFAULT_RESCORE_EVERY,
    ) -> None:
        self._parcels = parcels
        self._alerts = alerts
        self._topic = topic
        self._feedback = feedback
        self._fraud = fraud_scores
        self._feeds = feeds
        self._deadlines = deadlines
        self._clock = clock
        self._rescore_every = rescore_every
        # Alerts opened but not yet published, so the outbox flush need not read them back.
        self._raised: dict[tuple[str, AlertType], Alert] = {}

    # --- scans ------------------------------------------------------------------------------

    def record_scans(
        self, scans_by_parcel: Mapping[str, Sequence[ShipmentEvent]]
    ) -> dict[str, Parcel | DozorError]:
        """Apply each parcel's scans (one batched read for all); per parcel its new state or the error."""
        try:
            stored = self._parcels.load_many(list(scans_by_parcel))
        except StoreUnavailableError as error:
            return dict.fromkeys(scans_by_parcel, error)
        # A carrier's outage is not its parcels' silence: scans back-filled after one raise no STALLED.
        try:
            carriers = {e.carrier for events in scans_by_parcel.values() for e in events}
            feed_gaps = self._feeds.heard_from(carriers, self._clock())
        except StoreUnavailableError:
            feed_gaps = {}  # judged without them: at worst an alert too many
        # A new parcel keeps its order's fraud score (a loss feature): one read for all of them.
        new_orders = [events[0].order_id for pid, events in scans_by_parcel.items() if pid not in stored]
        scores = self._fraud.fraud_scores(new_orders) if new_orders else {}
        results: dict[str, Parcel | DozorError] = {}
        for parcel_id, events in scans_by_parcel.items():
            try:
                results[parcel_id] = self._record(stored.get(parcel_id), events, scores, feed_gaps)
            except DozorError as error:  # this parcel's scans are retried; the others are done
                results[parcel_id] = error
        return results

    def _record(
        self,
        stored: StoredParcel | None,
        events: Sequence[ShipmentEvent],
        scores: Mapping[str, float],
        feed_gaps: Mapping[str, list[FeedGap]],
    ) -> Parcel:
        for _ in range(SAVE_ATTEMPTS):
            before = stored.parcel if stored is not None else None
            parcel = apply_scans(before, events, self._deadlines)
            if stored is not None and parcel is before:  # nothing new: a duplicate delivery
                # Judged again all the same: the delivery that saved these scans may have died
                # before it raised their alert (idempotent: an open alert is not opened twice).
                gaps = feed_gaps.get(stored.parcel.carrier, [])
                self._judge(stored, self._clock(), risk=None, threshold=None, look_at=None, feed_gaps=gaps)
                return parcel
            if before is None:
                parcel = replace(parcel, order_fraud_score=scores.get(parcel.order_id))
            outbox: frozenset[str] = frozenset()
            kind = OUTCOME_FEEDBACK.get(parcel.status)
            if kind is not None and (before is None or before.status != parcel.status):
                outbox = frozenset({outbox_entry("feedback", kind.value)})
            try:
                saved = self._parcels.save(parcel, before.version if before else None, outbox)
            except ParcelConflictError:
                stored = self._parcels.load(parcel.parcel_id)
                continue
            now = self._clock()
            # The loss risk needs the model, which only the sweeper loads: here the carrier's word
            # (EXCEPTION, LOST, ...) and the parcel's silence so far decide.
            gaps = feed_gaps.get(parcel.carrier, [])
            self._judge(saved, now, risk=None, threshold=None, look_at=None, feed_gaps=gaps)
            return saved.parcel
        raise ParcelConflictError(
            f"parcel {events[0].parcel_id} kept changing under {SAVE_ATTEMPTS} attempts"
        )

    # --- sweeping ---------------------------------------------------------------------------

    def sweep(
        self,
        now: datetime,
        model: ParcelLossModel,
        time_left: Callable[[], timedelta],
        *,
        page_size: int = 100,
        reserve: timedelta = timedelta(seconds=10),
    ) -> SweepReport:
        """Look at every parcel due by `now`, shard by shard, until done or out of time; resumable."""
        report = SweepReport()
        feed_gaps: dict[str, list[FeedGap]] = {}  # per carrier, read once per run
        cursor = self._parcels.load_cursor() or SweepCursor(0)
        shard, start = cursor.shard, cursor.start
        while shard < self._parcels.shards:
            if time_left() < reserve:
                self._parcels.save_cursor(SweepCursor(shard, start))
                return report
            page = self._parcels.due(shard, now, page_size, start)
            report.pages += 1
            report.poisoned.update(page.unreadable)
            for carrier in {s.parcel.carrier for s in page.parcels} - set(feed_gaps):
                feed_gaps[carrier] = self._feeds.gaps(carrier, now)
            self._look_at(page.parcels, now, model, report, feed_gaps)
            if page.next_start is None:
                shard, start = shard + 1, None
                report.shards_done += 1
            else:
                start = page.next_start
        if cursor != SweepCursor(0):
            self._parcels.save_cursor(None)
        report.finished = True
        return report

    def _look_at(
        self,
        parcels: Sequence[StoredParcel],
        now: datetime,
        model: ParcelLossModel,
        report: SweepReport,
        feed_gaps: Mapping[str, list[FeedGap]],
    ) -> None:
        # Poison isolation: whatever fails for one parcel (its dates, its lane, a bug its data
        # reaches, a store call about it) skips that parcel alone; the page goes on.
        rows, readable = [], []
        for stored in parcels:
            try:
                rows.append(parcel_features(stored.parcel, now, model.deadlines))
            except Exception as error:  # any exception: this parcel alone
                report.poisoned[stored.parcel.parcel_id] = _why(error)
            else:
                readable.append(stored)
        if not readable:
            return
        risks = model.risk(np.stack(rows))
        for stored, risk in zip(readable, risks, strict=True):
            report.looked_at += 1
            gaps = feed_gaps.get(stored.parcel.carrier, [])
            try:
                opened, resolved = self._judge(
                    stored,
                    now,
                    risk=float(risk),
                    threshold=model.likely_lost_threshold,
                    look_at=self._next_look(stored.parcel, now, gaps),
                    feed_gaps=gaps,
                )
            except (StoreUnavailableError, ParcelConflictError) as error:  # still due: next sweep
                report.deferred[stored.parcel.parcel_id] = _why(error)
                continue
            except Exception as error:  # any exception: this parcel alone
                report.poisoned[stored.parcel.parcel_id] = _why(error)
                continue
            for alert_type in opened:
                report.raised[alert_type.value] = report.raised.get(alert_type.value, 0) + 1
            report.resolved += len(resolved)

    def _next_look(self, parcel: Parcel, now: datetime, feed_gaps: Sequence[FeedGap]) -> datetime:
        """When the parcel's assessment can next change: when it turns stalled, else a re-score later."""
        outage = (now - parcel.last_scan_at) - effective_silence(parcel.last_scan_at, now, feed_gaps)
        stalled_at = parcel.last_scan_at + self._deadlines.stalled_after(parcel.lane, parcel.status) + outage
        rescore_at = now + self._rescore_every
        return min(stalled_at, rescore_at) if stalled_at > now else rescore_at

    # --- alerts and the outbox --------------------------------------------------------------

    def _judge(
        self,
        stored: StoredParcel,
        now: datetime,
        *,
        risk: float | None,
        threshold: float | None,
        look_at: datetime | None,
        feed_gaps: Sequence[FeedGap],
    ) -> tuple[frozenset[AlertType], frozenset[AlertType]]:
        """Open the alerts the parcel deserves, resolve those that are over, publish: (opened, resolved)."""
        parcel = stored.parcel
        wanted = assess(
            parcel,
            now,
            risk,
            self._deadlines,
            threshold if threshold is not None else 2.0,
            feed_gaps=feed_gaps,
        )
        wanted_types = {a.type for a in wanted}
        over = resolutions(parcel, now, self._deadlines, risk, threshold, feed_gaps=feed_gaps) - wanted_types
        to_open = [a for a in wanted if a.type not in stored.open_alerts]
        to_resolve = frozenset(stored.open_alerts & over)
        outbox = set(stored.outbox)
        opened: frozenset[AlertType] = frozenset()
        if to_open:
            if not self._alerts.open(parcel, to_open, look_at):
                return frozenset(), frozenset()  # the parcel moved on; its next look will judge it
            opened = frozenset(a.type for a in to_open)
            self._raised.update({(parcel.parcel_id, a.type): a for a in to_open})
            outbox |= {outbox_entry(AlertEvent.RAISED, t.value) for t in opened}
        elif look_at is not None:
            self._parcels.reschedule(parcel, look_at)
        if to_resolve:
            self._alerts.resolve(parcel.parcel_id, to_resolve, now)
            outbox |= {outbox_entry(AlertEvent.RESOLVED, t.value) for t in to_resolve}
        self._flush(replace(stored, outbox=frozenset(outbox)))
        return opened, to_resolve

    def _flush(self, stored: StoredParcel) -> None:
        """Publish what the parcel's outbox holds, then clear those entries."""
        if not stored.outbox:
            return
        parcel = stored.parcel
        for entry in sorted(stored.outbox):
            what, _, name = entry.partition(":")
            if what == "feedback":
                self._feedback.report(
                    Feedback(
                        order_id=parcel.order_id,
                        parcel_id=parcel.parcel_id,
                        kind=FeedbackKind(name),
                        reported_at=parcel.status_since,
                    )
                )
                continue
            event, alert_type = AlertEvent(what), AlertType(name)
            alert = (
                self._raised.pop((parcel.parcel_id, alert_type), None) if event == AlertEvent.RAISED else None
            )
            alert = alert or self._alerts.get(parcel.parcel_id, alert_type)
            if alert is not None:  # gone (expired) means there is nothing left to tell
                self._topic.publish(alert, event)
        self._parcels.clear_outbox(parcel.parcel_id, stored.outbox)

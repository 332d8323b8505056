"""Ops resolving an alert by hand: closed first, then told to the topic, then struck off the
parcel's outbox; a failed publish leaves the entry for the next scan or sweep to publish."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dozor.domain.errors import NotFoundError, StoreUnavailableError
from dozor.domain.parcels.alerts import Alert, AlertType, assess
from dozor.domain.parcels.handling import AlertHandling, AlertState, HandledAlert, resolve_by_hand
from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.shipments import ParcelStatus, ScanRecord, build_parcel
from dozor.domain.parcels.tracking import AlertEvent, outbox_entry

T0 = datetime(2026, 10, 1, tzinfo=UTC)
DEADLINES = LaneDeadlines()


def _stalled() -> Alert:
    scans = [ScanRecord("e0", ParcelStatus.IN_TRANSIT, T0, "cainiao", destination_region="RU-KHA")]
    parcel = build_parcel("p-1", "o-1", scans, DEADLINES)
    (alert,) = [
        a
        for a in assess(parcel, T0 + timedelta(days=20), None, DEADLINES, 0.5)
        if a.type is AlertType.STALLED
    ]
    return alert


class Ops:
    """The alert store, the topic and the parcels' outboxes, recording what was asked of them."""

    def __init__(self, alert: Alert | None, publish_fails: bool = False) -> None:
        self.alert, self.publish_fails = alert, publish_fails
        self.calls: list[tuple[str, object]] = []

    def close(self, parcel_id: str, alert_type: AlertType, by: str, note: str | None, at: datetime) -> None:
        self.calls.append(("close", (parcel_id, alert_type, by, note)))

    def handled(self, parcel_id: str, alert_type: AlertType) -> HandledAlert | None:
        if self.alert is None:
            return None
        return HandledAlert(
            alert=self.alert, handling=AlertHandling(state=AlertState.RESOLVED, resolved_by="ops-1")
        )

    def publish(self, alert: Alert, event: AlertEvent) -> None:
        if self.publish_fails:
            raise StoreUnavailableError("topic unreachable")
        self.calls.append(("publish", (alert.parcel_id, event)))

    def clear_outbox(self, parcel_id: str, entries: frozenset[str]) -> None:
        self.calls.append(("clear", (parcel_id, entries)))


def test_a_resolved_alert_is_closed_published_then_struck_off() -> None:
    ops = Ops(_stalled())
    handled = resolve_by_hand(ops, ops, ops, "p-1", AlertType.STALLED, "ops-1", "called the carrier", T0)
    assert handled.handling.state is AlertState.RESOLVED
    assert ops.calls == [
        ("close", ("p-1", AlertType.STALLED, "ops-1", "called the carrier")),
        ("publish", ("p-1", AlertEvent.RESOLVED)),
        ("clear", ("p-1", frozenset({outbox_entry(AlertEvent.RESOLVED, AlertType.STALLED.value)}))),
    ]


def test_a_failed_publish_leaves_the_outbox_entry_for_the_next_scan_or_sweep() -> None:
    ops = Ops(_stalled(), publish_fails=True)
    with pytest.raises(StoreUnavailableError):
        resolve_by_hand(ops, ops, ops, "p-1", AlertType.STALLED, "ops-1", None, T0)
    assert [name for name, _ in ops.calls] == ["close"]


def test_an_alert_gone_after_closing_tells_nobody() -> None:
    ops = Ops(None)
    with pytest.raises(NotFoundError):
        resolve_by_hand(ops, ops, ops, "p-1", AlertType.STALLED, "ops-1", None, T0)
    assert [name for name, _ in ops.calls] == ["close"]

"""What ops did with an alert: acknowledged it (someone is on it) or resolved it by hand.

An acknowledged alert stays open: the parcel is still late, and the sweeper still sees it. A
resolved one is closed as if its reason were over: should the parcel stay stalled (or its risk
stay high), the next sweep raises it again, which is what ops wants to hear about.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from dozor.domain.errors import NotFoundError
from dozor.domain.parcels.alerts import Alert, AlertType
from dozor.domain.parcels.tracking import AlertEvent, AlertTopic, outbox_entry


class AlertState(StrEnum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"


class AlertHandling(BaseModel):
    model_config = ConfigDict(frozen=True)

    state: AlertState
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_by: str | None = None  # None when it was resolved by Dozor itself (delivered, moved on)
    resolved_at: datetime | None = None
    note: str | None = None


class HandledAlert(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert: Alert
    handling: AlertHandling


class HandledAlerts(Protocol):
    """The alert store as ops uses it."""

    def close(self, parcel_id: str, alert_type: AlertType, by: str, note: str | None, at: datetime) -> None:
        """Resolve an open alert by hand, its RESOLVED entry put in the parcel's outbox in the
        same write; ConflictError when it is resolved already, NotFoundError when there is none."""
        ...

    def handled(self, parcel_id: str, alert_type: AlertType) -> HandledAlert | None: ...


class ParcelOutboxes(Protocol):
    def clear_outbox(self, parcel_id: str, entries: frozenset[str]) -> None: ...


def resolve_by_hand(
    alerts: HandledAlerts,
    topic: AlertTopic,
    parcels: ParcelOutboxes,
    parcel_id: str,
    alert_type: AlertType,
    by: str,
    note: str | None,
    at: datetime,
) -> HandledAlert:
    """Close an open alert for ops and tell the alerts topic's subscribers.

    As the tracking service flushes a parcel's outbox: publish, then strike the entry off. If the
    publish fails the entry stays, and the parcel's next scan or sweep publishes it.
    """
    alerts.close(parcel_id, alert_type, by, note, at)
    handled = alerts.handled(parcel_id, alert_type)
    if handled is None:  # expired between the two calls: nothing left to tell
        raise NotFoundError(f"no {alert_type.value} alert for parcel {parcel_id}")
    topic.publish(handled.alert, AlertEvent.RESOLVED)
    parcels.clear_outbox(parcel_id, frozenset({outbox_entry(AlertEvent.RESOLVED, alert_type.value)}))
    return handled

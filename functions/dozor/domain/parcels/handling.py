"""What ops did with an alert: acknowledged it (someone is on it) or resolved it by hand.

An acknowledged alert stays open: the parcel is still late, and the sweeper still sees it. A
resolved one is closed as if its reason were over: should the parcel stay stalled (or its risk
stay high), the next sweep raises it again, which is what ops wants to hear about.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from dozor.domain.parcels.alerts import Alert


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

"""Time units and the one way Dozor writes an instant as text.

Aggregates, simulators and reports count time in epoch seconds; these are their units. Stored
and exported instants are RFC 3339 in UTC with a ``Z`` and whole seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime

MINUTE = 60
HOUR = 3_600
DAY = 86_400


def from_epoch(epoch: float) -> datetime:
    """The UTC instant of epoch seconds."""
    return datetime.fromtimestamp(epoch, UTC)


def iso_z(t: datetime) -> str:
    """``2026-11-11T09:30:00Z``: the instant in UTC, to the second."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

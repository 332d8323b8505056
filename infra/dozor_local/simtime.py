"""Functions on the stack's simulated clock: a handler wrapper that makes their "now" the event's time.

With a `SimClock` the demo runs weeks of parcels in minutes, and a function that judges by the
wall clock (ParcelTracking: how long has this parcel been silent?) would compare simulated scans
with today's date. On a simulated stack `LocalServer` therefore loads this wrapper as each
function's handler (`DOZOR_LOCAL_HANDLER` names the real one); per invocation it takes the time
the event carries — a scheduled event's `time`, the newest receive stamp of an SQS batch (the
pollers stamp records with the simulated clock) — and answers `datetime.now()` with it in the
modules that read the clock. Events without a time (HTTP calls) see the wall clock, as before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from dozor_local.invoke import load_handler

HANDLER_ENV = "DOZOR_LOCAL_HANDLER"
WRAPPER = "dozor_local.simtime.handler"
# The modules whose clock defaults to `datetime.now` and whose judgement depends on it. Scoring
# stays on the wall clock: its only use is the decision's `decided_at`, and checkout calls (HTTP)
# carry no simulated time, so queued and checked-out orders would disagree.
CLOCKED_MODULES = ("dozor.domain.parcels.tracking",)


class _Pinned:
    """The current invocation's simulated time (None: use the wall clock)."""

    now: datetime | None = None


class SimulatedDatetime(datetime):
    """`datetime` whose `now()` is the current invocation's simulated time (wall time outside one)."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> SimulatedDatetime:
        moment = _Pinned.now
        if moment is None:
            return super().now(tz)
        moment = moment.astimezone(tz) if tz is not None else moment.astimezone(UTC).replace(tzinfo=None)
        return cls.fromtimestamp(moment.timestamp(), tz)


def event_time(event: Any) -> datetime | None:
    """The simulated time an event carries: a schedule's tick, or when an SQS batch was received."""
    if not isinstance(event, dict):
        return None
    if event.get("detail-type") == "Scheduled Event" and isinstance(event.get("time"), str):
        return datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    stamps = [
        int(r["attributes"]["ApproximateFirstReceiveTimestamp"])
        for r in event.get("Records") or []
        if isinstance(r, dict) and "ApproximateFirstReceiveTimestamp" in (r.get("attributes") or {})
    ]
    return datetime.fromtimestamp(max(stamps) / 1000, UTC) if stamps else None


def _install() -> Callable[[Any, Any], Any]:
    """Import the real handler (the worker's init, as without the wrapper), then re-point the clocks."""
    real = load_handler(os.environ[HANDLER_ENV])
    for name in CLOCKED_MODULES:
        module = sys.modules.get(name)  # the dozor handlers import it through their wiring
        if module is not None:
            module.datetime = SimulatedDatetime  # type: ignore[attr-defined]
    return real


# The worker imports this module after applying the function's environment, as it would the handler.
_real = _install() if HANDLER_ENV in os.environ else None


def handler(event: Any, context: Any) -> Any:
    """Run the real handler with `now` pinned to the event's simulated time."""
    if _real is None:
        raise RuntimeError(f"{HANDLER_ENV} names no handler")
    _Pinned.now = event_time(event)
    try:
        return _real(event, context)
    finally:
        _Pinned.now = None

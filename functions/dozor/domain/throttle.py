"""Per-caller rate limits, shared by every container of the scoring function at the cost of one
small write per batch of requests, and never in checkout's way when the shared store misbehaves.

A caller (an IAM role, a JWT client) has a `CallerLimit`: a steady rate and a burst. Two things
enforce it, both decided in memory:

- **A local token bucket per caller in each container** (rate, burst): one container never lets
  a caller past its limit, with no I/O at all.
- **A shared count per caller and window** (`SharedCounts`, a DynamoDB counter item per caller
  and ``window`` seconds): what the caller's requests add up to across containers. A container
  does not write per request: it counts the requests it admitted and adds them to the shared
  item in one atomic ADD once it holds ``sync_every`` of them or ``sync_seconds`` have passed,
  and the ADD's answer (the window's total so far) is what its next decisions see. The estimate
  slides: the previous window's last known total weighs in for the part of it still in the
  sliding window (``prev * (1 - elapsed_fraction) + current``), so crossing a window boundary
  does not hand a caller a fresh allowance all at once.

What the counts can miss: each container may hold up to ``sync_every - 1`` admitted requests not
yet added, and what others added since its last sync. A caller spread over C containers can so
exceed its window allowance by at most about ``C * sync_every`` requests before every container
sees it; each container's own bucket still holds it to the rate.

**Fail-open.** The limiter protects capacity; checkout's decision matters more. A sync is made
only when its worst case fits the time left before the decision (``fits``); a sync that fails
(timed out, refused, throttled: `StoreUnavailableError`) admits the request on the local bucket
alone, keeps the counts to add them later, and leaves the store alone for ``pause_seconds``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from dozor.domain.errors import DozorError


@dataclass(frozen=True)
class CallerLimit:
    """A caller's steady rate (requests per second) and burst (requests above it at once)."""

    rate: float
    burst: int

    def allowance(self, window: float) -> float:
        """Requests the caller may make in one shared (sliding) window, across every container:
        the rate's worth, or one burst when that is more. (Not both: a window of burst + rate
        would let a caller spread over containers keep up rate + burst / window for good.)"""
        return max(self.rate * window, float(self.burst))


class SharedCounts(Protocol):
    def add(self, caller: str, window: int, hits: int) -> int:
        """Add ``hits`` to the caller's count for ``window``; the count after the addition."""
        ...


class ThrottleMonitor(Protocol):
    def throttled(self, caller: str, retry_after: float, reason: str) -> None: ...

    def store_failed(self, caller: str, reason: str) -> None: ...


class _Silent:
    def throttled(self, caller: str, retry_after: float, reason: str) -> None:
        return None

    def store_failed(self, caller: str, reason: str) -> None:
        return None


@dataclass(frozen=True)
class Admission:
    """Whether a request may go on; if not, in how many seconds it may be tried again."""

    allowed: bool
    retry_after: float = 0.0
    reason: str = ""
    wrote: bool = False  # this request paid for a write (or a failed attempt) to the shared count


@dataclass
class _CallerState:
    tokens: float
    refilled_at: float
    window: int = -1
    current: int = 0  # the shared count of `window` as last seen (this container's syncs included)
    previous: int = 0  # the shared count of the window before, as last seen
    unreported: int = 0  # admitted here, not yet added to the shared count
    synced_at: float = -math.inf
    synced_window: int = -1


@dataclass
class CallerLimiter:
    """Decides, per request, whether its caller is within its limit (one per container)."""

    default: CallerLimit
    counts: SharedCounts | None
    overrides: Mapping[str, CallerLimit] = field(default_factory=dict)
    window: float = 10.0
    sync_every: int = 10
    sync_seconds: float = 1.0
    pause_seconds: float = 5.0
    monitor: ThrottleMonitor = field(default_factory=_Silent)
    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    _callers: dict[str, _CallerState] = field(default_factory=dict)
    _paused_until: float = -math.inf

    def limit(self, caller: str) -> CallerLimit:
        return self.overrides.get(caller, self.default)

    def admit(self, caller: str, fits: Callable[[], bool] = lambda: True) -> Admission:
        """One request of ``caller``: allowed or not. ``fits``: may a shared-count write be made now."""
        limit = self.limit(caller)
        now, wall = self.monotonic(), self.wall()
        state = self._callers.get(caller)
        if state is None:
            state = self._callers[caller] = _CallerState(tokens=float(limit.burst), refilled_at=now)
        self._refill(state, limit, now)
        self._roll(state, wall)
        wrote = self._maybe_sync(caller, state, limit, now, fits)
        if state.tokens < 1:
            wait = (1 - state.tokens) / limit.rate
            return self._refuse(caller, wait, f"over {limit.rate:g} requests/s in this container", wrote)
        shared_wait = self._shared_wait(state, limit, wall)
        if shared_wait > 0:
            return self._refuse(caller, shared_wait, f"over {limit.rate:g} requests/s across the API", wrote)
        state.tokens -= 1
        state.unreported += 1
        return Admission(True, wrote=wrote)

    def _refuse(self, caller: str, wait: float, reason: str, wrote: bool) -> Admission:
        self.monitor.throttled(caller, wait, reason)
        return Admission(False, wait, reason, wrote)

    @staticmethod
    def _refill(state: _CallerState, limit: CallerLimit, now: float) -> None:
        state.tokens = min(float(limit.burst), state.tokens + (now - state.refilled_at) * limit.rate)
        state.refilled_at = now

    def _roll(self, state: _CallerState, wall: float) -> None:
        """Move to the window ``wall`` falls in; what this container saw of the last one slides out."""
        index = int(wall // self.window)
        if index == state.window:
            return
        # Requests admitted in the old window and not yet added are added to the new one: they
        # count a little late rather than never, and need no extra write.
        state.previous = state.current if index == state.window + 1 else 0
        state.current, state.window = 0, index

    def _maybe_sync(
        self, caller: str, state: _CallerState, limit: CallerLimit, now: float, fits: Callable[[], bool]
    ) -> bool:
        """Add what this container admitted to the shared count, and learn the total, when due:
        at a caller's first request in a window, once ``sync_every`` requests are held, and
        ``sync_seconds`` after the last sync while the caller nears its limit (a caller far
        below it needs no fresher counts: what may be hidden is bounded by ``sync_every``)."""
        near = state.previous + state.current + state.unreported >= limit.allowance(self.window) / 2
        due = (
            state.synced_window != state.window
            or state.unreported >= self.sync_every
            or (near and state.unreported > 0 and now - state.synced_at >= self.sync_seconds)
        )
        if self.counts is None or not due or now < self._paused_until or not fits():
            return False
        try:
            total = self.counts.add(caller, state.window, state.unreported)
        except DozorError as error:  # unavailable (or anything the store says): fail open
            self._paused_until = now + self.pause_seconds
            self.monitor.store_failed(caller, str(error))
            return True
        state.current = max(state.current + state.unreported, total)
        state.unreported = 0
        state.synced_at, state.synced_window = now, state.window
        return True

    def _shared_wait(self, state: _CallerState, limit: CallerLimit, wall: float) -> float:
        """Seconds until one more request fits the sliding window's allowance (0: it fits now)."""
        allowance = limit.allowance(self.window)
        elapsed = wall / self.window - state.window  # fraction of the current window gone
        here = state.current + state.unreported + 1
        if here > allowance:  # over on this window alone: wait for the next one
            return max((1 - elapsed) * self.window, 0.001)
        if state.previous * (1 - elapsed) + here <= allowance:
            return 0.0
        # The previous window's weight must fall to what is left of the allowance.
        needed = 1 - (allowance - here) / state.previous
        return max((needed - elapsed) * self.window, 0.001)

"""The latency budget of a checkout decision, and retries that fit inside it.

A `Deadline` starts when the order arrives. Every store call is bounded by the AWS clients'
timeouts (`dozor.handlers.wiring.client_config` sizes them from the same budget), so a call costs
at most ``attempt_cost`` seconds; `within` tries a call again after a jittered backoff only while
one more attempt, the backoff and what must still follow (``reserve``) fit before the deadline.
No retry is ever started that could not finish in time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from dozor.domain.errors import StoreUnavailableError

T = TypeVar("T")

BASE_BACKOFF = 0.01  # seconds; doubled per attempt, full jitter
MAX_BACKOFF = 0.1


@dataclass
class Deadline:
    """An instant on the monotonic clock by which the decision must be answered."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=-1.0)

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def remaining(self) -> float:
        return self.seconds - (self.clock() - self.started)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def allows(self, cost: float) -> bool:
        return self.remaining() >= cost


def within(
    deadline: Deadline,
    call: Callable[[], T],
    *,
    attempt_cost: float,
    reserve: float = 0.0,
    rng: Callable[[], float] = random.random,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, retried on `StoreUnavailableError` while another attempt fits in the budget.

    The first attempt needs ``attempt_cost + reserve`` left too: when it does not fit, the call
    is not made and `StoreUnavailableError` says the budget ran out.
    """
    attempt = 0
    if not deadline.allows(attempt_cost + reserve):
        raise StoreUnavailableError("latency budget spent before the call")
    while True:
        try:
            return call()
        except StoreUnavailableError:
            attempt += 1
            backoff = rng() * min(MAX_BACKOFF, BASE_BACKOFF * 2**attempt)
            if not deadline.allows(backoff + attempt_cost + reserve):
                raise
            sleep(backoff)


@dataclass(frozen=True)
class Budget:
    """How long checkout may wait for a decision, and what one store call may cost at most."""

    seconds: float = 0.8

    @property
    def connect_timeout(self) -> float:
        return round(self.seconds * 0.1, 3)

    @property
    def read_timeout(self) -> float:
        return round(self.seconds * 0.2, 3)

    @property
    def attempt_cost(self) -> float:
        """The longest one call can take: a connect and a read that both time out."""
        return self.connect_timeout + self.read_timeout

    @property
    def decision_reserve(self) -> float:
        """What a decision needs left when it starts: a store read, then a write or a hand-off."""
        return 3 * self.attempt_cost

    @property
    def side_call_cost(self) -> float:
        """The longest a call the decision can do without may take (the caller throttle's count,
        the registry's pointers): two of them fit, one after the other, in what the budget holds
        beyond `decision_reserve`, so neither can cost checkout its store read."""
        return round(max(0.0, self.seconds - self.decision_reserve) / 2, 3)

    def start(self) -> Deadline:
        return Deadline(self.seconds)

"""Per-caller limits (dozor.domain.throttle) on a simulated clock, with the shared count as a
dict behind the domain's own `SharedCounts` port: how many requests get through, how many writes
they cost, and what the limiter does when the count cannot be written."""

from __future__ import annotations

from dozor.domain.errors import StoreUnavailableError
from dozor.domain.throttle import CallerLimit, CallerLimiter

CALLER = "arn:aws:iam::123456789012:role/checkout"
LIMIT = CallerLimit(rate=50, burst=100)


class Counts:
    """The shared count per (caller, window), as the table keeps it; every add is one write."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, int], int] = {}
        self.writes = 0
        self.failing = False

    def add(self, caller: str, window: int, hits: int) -> int:
        self.writes += 1
        if self.failing:
            raise StoreUnavailableError("counts not added: throttled")
        key = (caller, window)
        self.items[key] = self.items.get(key, 0) + hits
        return self.items[key]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def limiters(count: int, counts: Counts, clock: Clock) -> list[CallerLimiter]:
    return [CallerLimiter(LIMIT, counts, monotonic=clock, wall=clock) for _ in range(count)]


def send(containers: list[CallerLimiter], clock: Clock, rps: float, seconds: float) -> int:
    """Requests spread evenly over the containers; how many were let through."""
    admitted = 0
    for n in range(int(rps * seconds)):
        admitted += containers[n % len(containers)].admit(CALLER).allowed
        clock.now += 1 / rps
    return admitted


def test_one_container_holds_a_caller_at_twice_its_limit_to_it_with_a_write_per_20_requests() -> None:
    counts, clock = Counts(), Clock()
    admitted = send(limiters(1, counts, clock), clock, rps=100, seconds=60)
    ceiling = LIMIT.rate * 60 + LIMIT.burst
    assert 0.95 * ceiling <= admitted <= ceiling
    assert counts.writes / (100 * 60) <= 0.06  # refused requests write nothing


def test_containers_sharing_a_caller_hold_it_near_its_limit_together() -> None:
    counts, clock = Counts(), Clock()
    admitted = send(limiters(4, counts, clock), clock, rps=200, seconds=60)
    # Each container alone would let 50/s through (200 in all): together about 50
    assert admitted <= 1.1 * (LIMIT.rate * 60 + LIMIT.burst)
    assert counts.writes / (200 * 60) <= 0.05


def test_a_caller_within_its_limit_passes_and_pays_a_write_per_ten_requests() -> None:
    counts, clock = Counts(), Clock()
    assert send(limiters(1, counts, clock), clock, rps=20, seconds=60) == 20 * 60
    assert counts.writes <= 20 * 60 / 10 + 6  # every 10 held, and each window's first


def test_a_slow_caller_writes_about_once_per_window() -> None:
    counts, clock = Counts(), Clock()
    assert send(limiters(1, counts, clock), clock, rps=0.2, seconds=600) == 120
    assert counts.writes <= 600 / 10 + 1


def test_a_caller_over_the_shared_allowance_is_told_when_to_come_back() -> None:
    counts, clock = Counts(), Clock()
    first, second = limiters(2, counts, clock)
    busy = CallerLimit(rate=1, burst=10)  # 10 per 10 s window
    first.overrides = second.overrides = {CALLER: busy}
    assert all(first.admit(CALLER).allowed for _ in range(10))
    first.admit(CALLER)  # the 11th makes the first container add its last five
    verdict = second.admit(CALLER)
    assert not verdict.allowed
    assert 0 < verdict.retry_after <= 10
    assert "across the API" in verdict.reason


def test_a_failing_count_lets_requests_through_and_leaves_the_store_alone_for_a_while() -> None:
    counts, clock = Counts(), Clock()
    (limiter,) = limiters(1, counts, clock)
    limiter.admit(CALLER)  # the window's first write
    counts.failing = True
    writes = counts.writes
    admitted = send([limiter], clock, rps=20, seconds=4)
    assert admitted == 80  # the local bucket alone decides
    assert counts.writes == writes + 1  # one failed write, then paused (5 s)
    counts.failing = False
    clock.now += 2
    limiter.admit(CALLER)
    # Back: what was admitted meanwhile is added, not lost
    assert sum(counts.items.values()) >= 80


def test_no_write_is_made_when_it_does_not_fit_the_budget() -> None:
    counts, clock = Counts(), Clock()
    (limiter,) = limiters(1, counts, clock)
    verdicts = [limiter.admit(CALLER, fits=lambda: False) for _ in range(30)]
    assert all(v.allowed for v in verdicts)
    assert counts.writes == 0

"""Replay a simulated period through the local stack as production would see it.

A `Feed` yields `(simulated time, action)` in time order: an `HttpCall` to the API (a checkout),
or a `QueueMessage` onto one of the template's queues (order events, carrier scans, feedback).
`replay` merges the feeds by time, moves the stack's simulated clock along (schedules fire on
it), sends checkout calls from a few concurrent clients and queue messages in batches, and keeps
the queues drained in pace (moto's SQS slows down with queue depth). New feeds plug in by
implementing `Feed`; the pollers and schedules come from the template, so a new function with an
SQS or Schedule event needs nothing here.
"""

from __future__ import annotations

import heapq
import http.client
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from dozor_local.auth import sign
from dozor_local.server import LocalServer


@dataclass(frozen=True)
class HttpCall:
    """A request to the local API, e.g. a checkout asking for a decision."""

    method: str
    path: str
    body: Any = None
    tag: str | None = None  # what the caller wants the response filed under (an order id)


@dataclass(frozen=True)
class QueueMessage:
    """A message onto a queue of the template, by logical id."""

    queue: str
    body: Any
    # Who produces it (a carrier's integration, say): each producer batches its own messages.
    producer: str | None = None


Action = HttpCall | QueueMessage


class Feed(Protocol):
    """A source of traffic: (simulated time, action) pairs in time order."""

    name: str

    def events(self) -> Iterator[tuple[datetime, Action]]: ...


@dataclass
class HttpResult:
    tag: str | None
    status: int
    body: Any
    latency_ms: float


@dataclass
class ReplayStats:
    actions: int = 0
    http: list[HttpResult] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)
    schedule_ticks: int = 0
    wall_seconds: float = 0.0


class ApiClient:
    """Keep-alive HTTP connections to the local API, one per thread; every request SigV4-signed
    for `region` with the local principal, as a checkout in AWS signs its calls (None: unsigned)."""

    def __init__(self, base_url: str, region: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        split = urlsplit(base_url)
        self.host, self.port = split.hostname or "127.0.0.1", split.port or 80
        self.region = region
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self._local.connection = connection
        return connection

    def call(self, call: HttpCall) -> HttpResult:
        text = call.body if isinstance(call.body, str | None) else json.dumps(call.body)
        # bytes, not str: http.client encodes a str body as Latin-1, and sends bytes with the headers
        body = None if text is None else text.encode()
        headers = {"content-type": "application/json", "user-agent": "dozor-demo-checkout"}
        started = time.perf_counter()
        if self.region is not None:
            headers = sign(call.method, self.base_url + call.path, body or b"", headers, region=self.region)
        for attempt in range(2):  # a dropped keep-alive connection is retried once on a fresh one
            connection = self._connection()
            try:
                connection.request(call.method, call.path, body=body, headers=headers)
                response = connection.getresponse()
                raw = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                self._local.connection = None
                if attempt:
                    raise
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return HttpResult(call.tag, response.status, parsed, latency_ms)


class Progress:
    """A one-line progress bar on stderr (no dependency, redrawn at most 10 times a second)."""

    def __init__(self, total: int, label: str, stream: Any = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self._drawn = 0.0

    def update(self, done: int, note: str = "", *, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        fraction = min(done / self.total, 1.0)
        bar = "#" * int(fraction * 30)
        self.stream.write(
            f"\r{self.label} [{bar:<30}] {fraction:4.0%} {done:,}/{self.total:,} {note} "
            f"{now - self.started:5.1f}s "
        )
        self.stream.flush()

    def close(self, done: int, note: str = "") -> None:
        self.update(done, note, force=True)
        self.stream.write("\n")
        self.stream.flush()


def merge(feeds: Iterable[Feed]) -> Iterator[tuple[datetime, Action]]:
    """All feeds' events in simulated-time order (stable for equal times)."""
    return heapq.merge(*(feed.events() for feed in feeds), key=lambda event: event[0])


Batch = tuple[str, str | None]  # (queue, producer)


@dataclass
class Outbox:
    """Queue messages waiting to go out as SendMessageBatch calls: each producer batches its own,
    up to ten, and sends a smaller batch rather than hold a message `hold` (simulated time) or
    longer. Batches come out as (queue, bodies), each producer's messages in the order added."""

    hold: timedelta
    bodies: dict[Batch, list[Any]] = field(default_factory=dict)
    since: dict[Batch, datetime] = field(default_factory=dict)

    def add(self, message: QueueMessage, moment: datetime) -> tuple[str, list[Any]] | None:
        """Buffer a message; its producer's batch when that is full (ten), else None."""
        batch = (message.queue, message.producer)
        bodies = self.bodies.setdefault(batch, [])
        bodies.append(message.body)
        self.since.setdefault(batch, moment)
        return self._take(batch) if len(bodies) >= 10 else None

    def due(self, moment: datetime) -> list[tuple[str, list[Any]]]:
        """The batches whose oldest message has waited `hold` by `moment`."""
        return [self._take(b) for b, since in list(self.since.items()) if moment - since >= self.hold]

    def drain(self) -> list[tuple[str, list[Any]]]:
        """Every batch still buffered."""
        return [self._take(b) for b in list(self.bodies)]

    def _take(self, batch: Batch) -> tuple[str, list[Any]]:
        self.since.pop(batch, None)
        return batch[0], self.bodies.pop(batch, [])


def replay(
    local: LocalServer,
    feeds: Iterable[Feed],
    *,
    total: int,
    clients: int = 2,
    window: int = 60,
    hold: timedelta = timedelta(hours=1),
    progress: Progress | None = None,
    on_http: Callable[[HttpResult], None] | None = None,
) -> ReplayStats:
    """Drive the stack with the merged feeds; returns what was sent and the API's answers.

    `clients` concurrent checkout clients (at most `4 * clients` calls in flight); queue messages
    go out as each producer would send them, ten per SendMessageBatch, a smaller batch when its
    oldest has waited `hold` simulated time (a carrier posting its scans hourly, say). The driver
    keeps going while the functions work, as producers do, but never more than `window` messages
    ahead of the pollers (moto's SQS slows down with queue depth; the simulated clock, which
    stamps what the pollers receive, stays close to each message's time). Before a schedule's
    tick everything sent is processed, so the tick sees it all; the tick then runs beside the
    traffic that follows it.
    """
    stats = ReplayStats()
    api = ApiClient(local.api_url, region=local.stack.region)
    outbox = Outbox(hold)
    in_flight: deque[Future[HttpResult]] = deque()
    consumers: dict[str, list[Any]] = {}
    for poller in local.pollers:
        if poller.event.queue:
            consumers.setdefault(poller.event.queue, []).append(poller)
    started = time.perf_counter()

    def send(queue: str, bodies: list[Any]) -> None:
        if bodies:
            local.send_batch(queue, bodies)
            stats.sent[queue] = stats.sent.get(queue, 0) + len(bodies)

    def collect(future: Future[HttpResult]) -> None:
        result = future.result()
        stats.http.append(result)
        if on_http is not None:
            on_http(result)

    def ahead() -> int:
        """Messages sent that no poller has received yet (counted here: the emulator is not asked)."""
        return sum(
            max(0, n - sum(p.stats.records for p in consumers[q]))
            for q, n in stats.sent.items()
            if q in consumers
        )

    def catch_up(limit: int) -> None:
        deadline = time.monotonic() + 300
        while ahead() > limit:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the pollers fell {ahead()} messages behind for 300 s")
            time.sleep(0.005)

    def settle() -> None:
        for queue, bodies in outbox.drain():
            send(queue, bodies)
        while in_flight:
            collect(in_flight.popleft())
        catch_up(0)
        local.wait_idle(timeout=300)  # and whatever the functions queued in turn

    def first_tick_after(moment: datetime | None) -> datetime | None:
        ticks = [
            s.next_tick if moment is None else s.next_after(moment) for s in local.schedulers if s.enabled
        ]
        return min((t for t in ticks if t is not None), default=None)

    next_tick = first_tick_after(None)
    ticking: Future[int] | None = None  # the schedules' last ticks, running beside the traffic

    def tick(moment: datetime) -> None:
        nonlocal ticking, next_tick
        settle()  # everything before the tick is processed when the schedule fires
        if ticking is not None:
            stats.schedule_ticks += ticking.result()
        local.clock.advance_to(moment)  # type: ignore[attr-defined]
        # As on AWS, the traffic does not wait for a scheduled function: the sweep runs while the
        # next scans arrive (each tick carries its own time, so it judges as of then).
        next_tick = first_tick_after(moment)  # before they run: the driver goes on meanwhile
        ticking = schedules.submit(lambda: sum(s.run_due(moment) for s in local.schedulers))

    with (
        ThreadPoolExecutor(max_workers=clients, thread_name_prefix="checkout") as pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="schedules") as schedules,
    ):
        for moment, action in merge(feeds):
            if next_tick is not None and moment >= next_tick:
                tick(moment)
            else:
                local.clock.advance_to(moment)  # type: ignore[attr-defined]
            for queue, bodies in outbox.due(moment):
                send(queue, bodies)
            if isinstance(action, HttpCall):
                in_flight.append(pool.submit(api.call, action))
                while len(in_flight) > 4 * clients or (in_flight and in_flight[0].done()):
                    collect(in_flight.popleft())
            else:
                send(*(outbox.add(action, moment) or (action.queue, [])))
                catch_up(window)
            stats.actions += 1
            if progress is not None:
                progress.update(stats.actions, f"sim {moment:%Y-%m-%d %H:%M}")
        settle()
        if ticking is not None:
            stats.schedule_ticks += ticking.result()
    stats.wall_seconds = time.perf_counter() - started
    return stats

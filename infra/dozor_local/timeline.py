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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
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


def replay(
    local: LocalServer,
    feeds: Iterable[Feed],
    *,
    total: int,
    clients: int = 2,
    pace: int = 40,
    progress: Progress | None = None,
    on_http: Callable[[HttpResult], None] | None = None,
) -> ReplayStats:
    """Drive the stack with the merged feeds; returns what was sent and the API's answers.

    `clients` concurrent checkout clients; every `pace` actions the queue batches are flushed and
    the driver waits for the pollers to drain them, so no queue ever holds more than ~`pace`.
    """
    stats = ReplayStats()
    api = ApiClient(local.api_url, region=local.stack.region)
    buffers: dict[str, list[Any]] = {}
    in_flight: list[Future[HttpResult]] = []
    started = time.perf_counter()

    def flush() -> None:
        for queue, bodies in buffers.items():
            if bodies:
                local.send_batch(queue, bodies)
                stats.sent[queue] = stats.sent.get(queue, 0) + len(bodies)
        buffers.clear()

    def settle() -> None:
        flush()
        for future in in_flight:
            result = future.result()
            stats.http.append(result)
            if on_http is not None:
                on_http(result)
        in_flight.clear()
        local.wait_idle(timeout=300)

    next_tick = min((s.next_tick for s in local.schedulers), default=None)
    with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="checkout") as pool:
        for moment, action in merge(feeds):
            if next_tick is not None and moment >= next_tick:
                settle()  # everything before the tick is processed when the schedule fires
                stats.schedule_ticks += local.advance_clock(moment, settle=False)
                next_tick = min(s.next_tick for s in local.schedulers)
            else:
                local.clock.advance_to(moment)  # type: ignore[attr-defined]
            if isinstance(action, HttpCall):
                in_flight.append(pool.submit(api.call, action))
            else:
                buffers.setdefault(action.queue, []).append(action.body)
                if len(buffers[action.queue]) >= 10:
                    flush()
            stats.actions += 1
            if stats.actions % pace == 0 or len(in_flight) >= 4 * clients:
                settle()
            if progress is not None:
                progress.update(stats.actions, f"sim {moment:%Y-%m-%d %H:%M}")
        settle()
    stats.wall_seconds = time.perf_counter() - started
    return stats

"""Lambda's event sources, locally: SQS event source mappings and schedules, from the template.

`SqsPoller` is one event source mapping: a thread long-polling the queue with the event's
BatchSize, filling a batch for up to MaximumBatchingWindowInSeconds, invoking the function with
the SQS event and deleting only the records not reported in `batchItemFailures` (none when the
invocation failed). Failed records stay invisible for the queue's visibility timeout and come
back; moto's redrive policy moves a record to the DLQ after maxReceiveCount receives.

`Scheduler` runs a function's `Schedule` / `ScheduleV2` events on a clock: `WallClock` for
`dozor local up`, `SimClock` for the demo and tests, where simulated days pass in seconds. The
function gets EventBridge's Scheduled Event whose `time` is the clock's (simulated) time, so a
handler that takes "now" from the event sees simulated time.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from dozor_local.event_source import to_event
from dozor_local.invoke import Invocation
from dozor_local.stack import EventSource

log = logging.getLogger(__name__)

Invoke = Callable[[dict[str, Any]], Invocation]


# --- SQS ---------------------------------------------------------------------------------------


@dataclass
class PollerStats:
    batches: int = 0
    records: int = 0
    deleted: int = 0
    failed_records: int = 0
    failed_invocations: int = 0


class SqsPoller:
    """One SQS event source mapping, polling in its own thread until `stop()`."""

    def __init__(
        self,
        sqs: Any,
        *,
        function: str,
        event: EventSource,
        queue_url: str,
        queue_arn: str,
        region: str,
        invoke: Invoke,
        retry_after: int | None = None,
        wait_seconds: int = 1,
        clock: Clock | None = None,
    ) -> None:
        self.sqs = sqs
        self.function = function
        self.event = event
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.invoke = invoke
        self.batch_size = event.batch_size or 10
        self.window = float(event.batching_window or 0)
        # None: failed records wait out the queue's visibility timeout, as on AWS. A number of
        # seconds: the simulated clock's compression of that wait (the demo, the tests).
        self.retry_after = retry_after
        self.wait_seconds = wait_seconds
        # A simulated clock: records are stamped as received at its time (moto stamps wall time),
        # which is what the functions on a simulated stack take as "now" (dozor_local.simtime).
        self.clock = clock
        self.stats = PollerStats()
        self._busy = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return f"{self.function}:{self.event.name}"

    def start(self) -> SqsPoller:
        self._thread = threading.Thread(target=self._run, name=f"sqs-poller-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(count, 10),
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        return messages

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # keep polling, as the managed poller does; the error is logged
                log.exception("poller %s failed", self.name)
                self._stopping.wait(1)

    def poll_once(self) -> int:
        """Receive a batch (long poll, then the batching window), invoke, delete the successes."""
        first = self._receive(self.batch_size, self.wait_seconds)
        if not first:
            return 0
        self._busy.set()
        try:
            batch = first
            deadline = time.monotonic() + self.window
            while (
                len(batch) < self.batch_size and time.monotonic() < deadline and not self._stopping.is_set()
            ):
                more = self._receive(self.batch_size - len(batch), 0)
                if not more:
                    break
                batch += more
            self._deliver(batch)
            return len(batch)
        finally:
            self._busy.clear()

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        if self.clock is not None:
            stamp = str(int(self.clock.now().timestamp() * 1000))
            for message in batch:
                attributes = message.setdefault("Attributes", {})
                attributes["ApproximateFirstReceiveTimestamp"] = stamp
        invocation = self.invoke(to_event(batch, self.queue_arn, self.region))
        self.stats.batches += 1
        self.stats.records += len(batch)
        if not invocation.ok:
            failed = {m["MessageId"] for m in batch}
            self.stats.failed_invocations += 1
        else:
            result = invocation.result if isinstance(invocation.result, dict) else {}
            failed = {str(f.get("itemIdentifier")) for f in result.get("batchItemFailures") or []}
        done = [m for m in batch if m["MessageId"] not in failed]
        self.stats.failed_records += len(batch) - len(done)
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )
        self.stats.deleted += len(done)
        if self.retry_after is not None:
            retried = [m for m in batch if m["MessageId"] in failed]
            for start in range(0, len(retried), 10):
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {
                            "Id": str(i),
                            "ReceiptHandle": m["ReceiptHandle"],
                            "VisibilityTimeout": self.retry_after,
                        }
                        for i, m in enumerate(retried[start : start + 10])
                    ],
                )


# --- clocks and schedules ----------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime: ...


class WallClock:
    """Real time, for `dozor local up`."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimClock:
    """Simulated time: it moves only when the driver advances it (never backwards)."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance_to(self, moment: datetime) -> None:
        with self._lock:
            self._now = max(self._now, moment)


_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_period(expression: str) -> timedelta:
    """The period of an EventBridge `rate(...)` expression (cron is not supported locally)."""
    found = _RATE.match(expression.strip())
    if not found:
        raise ValueError(f"schedule {expression!r}: only rate(N minutes|hours|days) runs locally")
    return timedelta(seconds=int(found.group(1)) * _UNIT[found.group(2).rstrip("s")])


def scheduled_event(moment: datetime, *, region: str, account_id: str, rule_arn: str) -> dict[str, Any]:
    """EventBridge's Scheduled Event, as a scheduled rule delivers it to Lambda."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class Scheduler:
    """One `Schedule` / `ScheduleV2` event of a function; the first tick is one period after `start`."""

    def __init__(
        self,
        *,
        function: str,
        event: EventSource,
        invoke: Invoke,
        start: datetime,
        region: str,
        account_id: str,
    ) -> None:
        props = event.properties
        self.function = function
        self.event = event
        self.invoke = invoke
        self.period = schedule_period(str(props.get("Schedule") or props.get("ScheduleExpression") or ""))
        self.enabled = str(props.get("Enabled", props.get("State", "true"))).lower() not in {
            "false",
            "disabled",
        }
        self.input = props.get("Input")
        self.region = region
        self.account_id = account_id
        self.rule_arn = f"arn:aws:events:{region}:{account_id}:rule/{function}-{event.name}"
        self.next_tick = start + self.period
        self.start = start
        self.ticks = 0
        self.failures = 0
        self._lock = threading.Lock()

    def every(self, period: timedelta) -> None:
        """Tick every `period` instead of the template's rate, still counted from the start.

        For a simulated run that cannot afford the deployed rate (the demo sweeps parcels every
        few simulated hours, not every hour): the function sees the same events, fewer of them.
        """
        if period <= timedelta(0):
            raise ValueError(f"a schedule's period must be positive, not {period}")
        with self._lock:
            elapsed = self.next_tick - self.period - self.start  # up to the last tick that fired
            self.period = period
            self.next_tick = self.start + (elapsed // period + 1) * period

    def next_after(self, now: datetime) -> datetime | None:
        """When the first tick after `now` is due (None: the schedule is disabled)."""
        if not self.enabled:
            return None
        with self._lock:
            if self.next_tick > now:
                return self.next_tick
            return self.next_tick + ((now - self.next_tick) // self.period + 1) * self.period

    def run_due(self, now: datetime) -> int:
        """Invoke once for every tick up to `now`, in order, each with its own time. Returns how many."""
        fired = 0
        with self._lock:
            while self.enabled and self.next_tick <= now:
                moment, self.next_tick = self.next_tick, self.next_tick + self.period
                payload = (
                    json.loads(self.input)
                    if isinstance(self.input, str)
                    else scheduled_event(
                        moment, region=self.region, account_id=self.account_id, rule_arn=self.rule_arn
                    )
                )
                invocation = self.invoke(payload)
                self.ticks += 1
                fired += 1
                if not invocation.ok:
                    self.failures += 1
                    log.warning("%s tick at %s failed: %s", self.function, moment, invocation.error)
        return fired


class WallTicker:
    """Drives schedulers on wall time, once a second, in a thread (`dozor local up`)."""

    def __init__(self, schedulers: list[Scheduler], clock: Clock) -> None:
        self.schedulers = schedulers
        self.clock = clock
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> WallTicker:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping.wait(1.0):
            for scheduler in self.schedulers:
                scheduler.run_due(self.clock.now())

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

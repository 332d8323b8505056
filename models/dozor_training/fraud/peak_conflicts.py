"""A model of how DynamoDB answers concurrent writers, laid over moto for the peak simulation.

moto applies writes one after another and never refuses one for contention. DynamoDB does, in
two ways this model reproduces (and nothing else: every item, condition and answer otherwise
comes from moto):

- **Transactions conflict.** A TransactWriteItems holds its items while it runs; another write
  to one of them in that time is refused: a transaction with ``TransactionCanceledException``
  (reason ``TransactionConflict`` at that item), a plain write with
  ``TransactionConflictException``. Two transactions on one item: the later one is cancelled.
- **An item takes about 1,000 write units a second.** Beyond that DynamoDB throttles
  (``ProvisionedThroughputExceededException``). The scoring functions' clients do not retry
  (botocore retries off, `handlers.wiring`): the service retries within its budget, then hands
  the decision to the pending-commits queue. With ``max_attempts`` above 1 the model retries as
  botocore would, adding the backoff to the call's latency.

Requests run one after another in this process, but each belongs to an order placed at a
*virtual* time (`VirtualClock`): its calls happen at that time plus the modelled latency of the
calls before them, so orders whose calls overlap in virtual time are the concurrent ones. The
first to run wins an overlap, as the first to reach the storage node does. Conditional writes
that fail (an order decided twice, a counter already applied) are moto's own answers.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

ITEM_UNITS_PER_SECOND = 1000
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}


@dataclass
class VirtualClock:
    """Where the current order is in virtual time, and what its calls have cost so far."""

    rng: random.Random
    median_ms: float = 4.0
    start: float = 0.0
    spent: float = 0.0  # seconds of modelled latency of the current order's calls

    def begin(self, at: float) -> None:
        self.start, self.spent = at, 0.0

    @property
    def now(self) -> float:
        return self.start + self.spent

    def call(self, slow: float = 1.0) -> tuple[float, float]:
        """A call starting now: (start, duration), lognormal around the median (p99 ~3x)."""
        duration = self.median_ms / 1000 * slow * self.rng.lognormvariate(0.0, 0.45)
        start = self.now
        self.spent += duration
        return start, duration


@dataclass
class ConflictModel:
    """The botocore hooks that refuse what DynamoDB would refuse (see the module docstring)."""

    clock: VirtualClock
    max_attempts: int = 1  # the scoring clients send once: botocore retries are off (handlers.wiring)
    _txn_holds: dict[str, list[tuple[float, float, int]]] = field(default_factory=lambda: defaultdict(list))
    _writes: dict[str, list[tuple[float, float, int]]] = field(default_factory=lambda: defaultdict(list))
    _units: dict[str, deque[tuple[float, int]]] = field(default_factory=lambda: defaultdict(deque))
    _request: int = 0
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    hottest_units_per_second: dict[str, int] = field(default_factory=dict)

    def install(self, session: Any) -> None:
        session.events.register_first("before-parameter-build.dynamodb", self._keep_params)
        session.events.register_first("before-call.dynamodb", self._before_call)

    def _keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["dozor_params"] = json.loads(json.dumps(params, default=str))

    def _before_call(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        operation = model.name
        params = context.get("dozor_params", {})
        transactional = operation == "TransactWriteItems"
        start, duration = self.clock.call(slow=2.0 if transactional else 1.0)
        if operation not in WRITES:
            return None
        self._request += 1
        keys = _keys(operation, params)
        end = start + duration
        busy = [i for i, key in enumerate(keys) if self._held(key, start, end, transactional)]
        if busy:
            self.counts[
                "transaction conflicts" if transactional else "writes refused: item in a transaction"
            ] += 1
            if transactional:
                reasons = [{"Code": "TransactionConflict" if i in busy else "None"} for i in range(len(keys))]
                return _error("TransactionCanceledException", reasons)
            return _error("TransactionConflictException")
        for attempt in range(self.max_attempts):
            if all(self._fits(key, start) for key in keys):
                break
            self.counts["throttled"] += 1
            if attempt == self.max_attempts - 1:
                return _error("ProvisionedThroughputExceededException")
            self.counts["throttled, retried by the client"] += 1
            backoff = self.clock.rng.uniform(0, 0.05 * 2**attempt)
            self.clock.spent += backoff + duration
            start = self.clock.now
        for key in keys:
            (self._txn_holds if transactional else self._writes)[key].append((start, end, self._request))
            self._charge(key, start, 3 if key.startswith("FeaturesTable|seller#") else 1)
        return None

    def _held(self, key: str, start: float, end: float, transactional: bool) -> bool:
        """Whether another request holds ``key`` in [start, end): a transaction always does;
        a plain write only against a transaction."""
        holders = self._txn_holds[key] + (self._writes[key] if transactional else [])
        return any(s < end and start < e and r != self._request for s, e, r in holders[-64:])

    def _fits(self, key: str, at: float) -> bool:
        window = self._units[key]
        while window and window[0][0] <= at - 1.0:
            window.popleft()
        return sum(u for _, u in window) < ITEM_UNITS_PER_SECOND

    def _charge(self, key: str, at: float, units: int) -> None:
        self._units[key].append((at, units))
        used = sum(u for _, u in self._units[key])
        if used > self.hottest_units_per_second.get(key, 0):
            self.hottest_units_per_second[key] = used


def _keys(operation: str, params: dict[str, Any]) -> list[str]:
    def key_of(body: dict[str, Any]) -> str:
        key = body.get("Key") or {
            k: v for k, v in body.get("Item", {}).items() if k in ("pk", "sk", "order_id")
        }
        table = str(body.get("TableName", "")).rsplit("-", 1)[0].split("-")[-1]
        return table + "|" + "|".join(str(next(iter(v.values()))) for _, v in sorted(key.items()))

    if operation == "TransactWriteItems":
        return [key_of(next(iter(entry.values()))) for entry in params.get("TransactItems", [])]
    return [key_of(params)]


def _error(code: str, reasons: list[dict[str, str]] | None = None) -> tuple[Any, dict[str, Any]]:
    error: dict[str, Any] = {"Error": {"Code": code, "Message": "modelled contention"}}
    if reasons is not None:
        error["CancellationReasons"] = reasons
    return type("Response", (), {"status_code": 400, "headers": {}})(), error

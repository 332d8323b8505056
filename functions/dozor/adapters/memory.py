"""The domain's ports in memory: the feature store, the decision store, the review queue.

Used to score history offline (training replay, backtests, benchmarks, the demo's baseline) and
by the unit tests, through exactly the code path the functions run, with the stores held in
dicts instead of DynamoDB and SQS. Same semantics: conditional decision writes, the same counter
arithmetic (`aggregates.apply_updates`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from dozor.domain.aggregates import ContainerUpdate, Key, apply_updates
from dozor.domain.contracts import Decision, Order
from dozor.domain.errors import AlreadyDecidedError
from dozor.domain.fraud.scoring import PendingCommit, PriorDecision


class InMemoryAggregates:
    """The feature store for training replay and tests: same reads and updates, in a dict."""

    def __init__(self) -> None:
        self.items: dict[Key, dict[str, object]] = {}

    def read(self, keys: Iterable[Key]) -> dict[Key, dict[str, object]]:
        get = self.items.get  # one lookup per key, in a dict of every entity the replay met
        return {k: item for k in keys if (item := get(k)) is not None}

    def apply(self, updates: Iterable[ContainerUpdate]) -> None:
        apply_updates(self.items, updates)


class InMemoryDecisionStore:
    """`DecisionStore` over dicts, with the same conditional-write semantics as DynamoDB."""

    def __init__(self) -> None:
        self.aggregates = InMemoryAggregates()
        self.decisions: dict[str, Decision] = {}
        self.orders: dict[str, Order] = {}  # as stored: personal data hashed
        self.fingerprints: dict[str, str] = {}
        self.outboxes: dict[str, frozenset[str]] = {}

    def load(
        self, order_ids: Sequence[str], keys: Iterable[Key], fits: Callable[[], bool] | None = None
    ) -> tuple[dict[str, PriorDecision], dict[Key, dict[str, object]]]:
        found = {oid: self._prior(oid) for oid in order_ids if oid in self.decisions}
        return found, self.aggregates.read(keys)

    def commit(self, pending: PendingCommit, fits: Callable[[], bool] | None = None) -> None:
        order_id = pending.decision.order_id
        if order_id in self.decisions:
            raise AlreadyDecidedError(order_id)
        self.decisions[order_id] = pending.decision
        if pending.order is not None:
            self.orders[order_id] = pending.order
        self.fingerprints[order_id] = pending.fingerprint
        self.outboxes[order_id] = pending.outbox
        self.aggregates.apply(pending.updates)

    def get_decision(self, order_id: str) -> Decision | None:
        return self.decisions.get(order_id)

    def get_prior(self, order_id: str) -> PriorDecision | None:
        return self._prior(order_id) if order_id in self.decisions else None

    def clear_outbox(self, order_id: str, entries: frozenset[str]) -> None:
        self.outboxes[order_id] = self.outboxes.get(order_id, frozenset()) - entries

    def _prior(self, order_id: str) -> PriorDecision:
        return PriorDecision(
            self.decisions[order_id],
            self.fingerprints.get(order_id),
            self.outboxes.get(order_id, frozenset()),
        )


class CollectingReviewQueue:
    """`ReviewQueue` that keeps what would have been sent to reviewers."""

    def __init__(self) -> None:
        self.submitted: list[tuple[Decision, Order]] = []

    def submit(self, decision: Decision, order: Order) -> None:
        self.submitted.append((decision, order))

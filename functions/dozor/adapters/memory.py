"""The domain's ports in memory: the feature store, the decision store, the review queue.

Used to score history offline (training replay, backtests, benchmarks, the demo's baseline) and
by the unit tests, through exactly the code path the functions run, with the stores held in
dicts instead of DynamoDB and SQS. Same semantics: conditional decision writes, the same counter
arithmetic (`aggregates.apply_updates`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dozor.domain.aggregates import ContainerUpdate, Key, apply_updates
from dozor.domain.contracts import Decision, Order
from dozor.domain.errors import AlreadyDecidedError


class InMemoryAggregates:
    """The feature store for training replay and tests: same reads and updates, in a dict."""

    def __init__(self) -> None:
        self.items: dict[Key, dict[str, object]] = {}

    def read(self, keys: Iterable[Key]) -> dict[Key, dict[str, object]]:
        return {k: self.items[k] for k in keys if k in self.items}

    def apply(self, updates: Iterable[ContainerUpdate]) -> None:
        apply_updates(self.items, updates)


class InMemoryDecisionStore:
    """`DecisionStore` over dicts, with the same conditional-write semantics as DynamoDB."""

    def __init__(self) -> None:
        self.aggregates = InMemoryAggregates()
        self.decisions: dict[str, Decision] = {}
        self.orders: dict[str, Order] = {}  # as stored: personal data hashed

    def load(
        self, order_ids: Sequence[str], keys: Iterable[Key]
    ) -> tuple[dict[str, Decision], dict[Key, dict[str, object]]]:
        found = {oid: self.decisions[oid] for oid in order_ids if oid in self.decisions}
        return found, self.aggregates.read(keys)

    def commit(self, decision: Decision, updates: list[ContainerUpdate], order: Order | None = None) -> None:
        if decision.order_id in self.decisions:
            raise AlreadyDecidedError(decision.order_id)
        self.decisions[decision.order_id] = decision
        if order is not None:
            self.orders[decision.order_id] = order
        self.aggregates.apply(updates)

    def get_decision(self, order_id: str) -> Decision | None:
        return self.decisions.get(order_id)


class CollectingReviewQueue:
    """`ReviewQueue` that keeps what would have been sent to reviewers."""

    def __init__(self) -> None:
        self.submitted: list[tuple[Decision, Order]] = []

    def submit(self, decision: Decision, order: Order) -> None:
        self.submitted.append((decision, order))

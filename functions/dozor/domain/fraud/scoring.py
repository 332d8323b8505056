"""Order scoring: the one domain service behind both the HTTP API and the order-event queue.

For a batch of orders (one, for the API) it makes one batched read of the entities' aggregates
and of any decisions already made, scores all new orders in one model call, and then commits each
order on its own: the decision write is conditional and carries the order's counter updates, so a
replayed order is counted once and gets its first decision back.

The models are swapped in between invocations (`use_models`) when the registry names a new
version; a shadow model, when set, scores the same feature rows in the same batch and its verdict
rides along on the `ScoredOrder` for the handler to log. It never changes the Decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from dozor.domain import aggregates as agg
from dozor.domain.contracts import Decision, DecisionKind, Order, ensure_not_ahead
from dozor.domain.errors import AlreadyDecidedError, StoreUnavailableError
from dozor.domain.fraud import features, rules
from dozor.domain.fraud.decisions import combine, decide
from dozor.domain.fraud.explanations import explain
from dozor.domain.fraud.model import FraudModel
from dozor.domain.privacy import PiiHasher, pseudonymise


class DecisionStore(Protocol):
    def load(
        self, order_ids: Sequence[str], keys: Iterable[agg.Key]
    ) -> tuple[dict[str, Decision], dict[agg.Key, dict[str, object]]]:
        """Decisions already made for these orders, and the aggregate containers: one batched read."""
        ...

    def commit(
        self, decision: Decision, updates: list[agg.ContainerUpdate], order: Order | None = None
    ) -> None:
        """Store a new decision (with its order, personal data hashed) and apply its counter updates
        atomically; AlreadyDecidedError if it exists."""
        ...

    def get_decision(self, order_id: str) -> Decision | None: ...


class ReviewQueue(Protocol):
    def submit(self, decision: Decision, order: Order) -> None: ...


@dataclass(frozen=True)
class ShadowVerdict:
    """What the shadow model would have decided; logged and measured, never acted on."""

    model_version: str
    score: float
    decision: DecisionKind


@dataclass
class ScoredOrder:
    """A decision made but not yet stored (``replay`` when it was stored before).

    ``repeat`` marks a second copy of an order within the same batch: its first copy stores the
    decision and sends it to review, so the repeat does neither.
    """

    order: Order
    decision: Decision
    updates: list[agg.ContainerUpdate] = field(default_factory=list)
    replay: bool = False
    repeat: bool = False
    features: np.ndarray | None = None
    shadow: ShadowVerdict | None = None


class OrderScoring:
    def __init__(
        self,
        store: DecisionStore,
        review_queue: ReviewQueue,
        model: FraudModel,
        hasher: PiiHasher,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._review_queue = review_queue
        self._model = model
        self._shadow: FraudModel | None = None
        self._hasher = hasher
        self._clock = clock

    def use_models(self, active: FraudModel, shadow: FraudModel | None = None) -> None:
        """Score with these models from the next batch on (the registry named new versions)."""
        self._model = active
        self._shadow = shadow

    @property
    def model(self) -> FraudModel:
        """The model that makes the decisions."""
        return self._model

    @property
    def shadow(self) -> FraudModel | None:
        return self._shadow

    def score(self, order: Order) -> Decision:
        """Decide one order and store the decision (or return the one stored before)."""
        return self.commit(self.prepare([order])[0])

    def prepare(self, orders: Sequence[Order]) -> list[ScoredOrder]:
        """Score orders together; results come back in input order.

        Orders are scored in time order, each seeing the ones before it in the batch, exactly as
        if they had arrived one by one. A repeated order id in the batch is scored once.
        """
        model, shadow = self._model, self._shadow  # one pair for the whole batch
        now = self._clock()
        for order in orders:  # the contract bounds the years; the clock bounds how far ahead
            ensure_not_ahead("created_at", order.created_at, now)
            ensure_not_ahead("buyer.account_created_at", order.buyer.account_created_at, now)
        entities = [features.identify(o, self._hasher) for o in orders]
        keys = {
            k for o, e in zip(orders, entities, strict=True) for k in agg.keys_for(e.values(), o.created_at)
        }
        degraded = False
        try:
            existing, snapshot = self._store.load([o.order_id for o in orders], keys)
        except StoreUnavailableError:
            # Checkout must not stall on the feature store: decide from the order alone, say so.
            existing, snapshot, degraded = {}, {}, True
        # Later orders of a batch must see earlier ones: overlay their updates on a copy of the
        # snapshot. A single order (every API call) needs neither the copy nor the overlay.
        overlay = len(orders) > 1
        working = {k: dict(v) for k, v in snapshot.items()} if overlay else snapshot

        results: dict[int, ScoredOrder] = {}
        fresh: list[tuple[int, features.OrderView, np.ndarray, list[agg.ContainerUpdate]]] = []
        first_index: dict[str, int] = {}
        for i in sorted(range(len(orders)), key=lambda j: orders[j].created_at):
            order = orders[i]
            if order.order_id in existing:
                results[i] = ScoredOrder(order, existing[order.order_id], replay=True)
                continue
            if order.order_id in first_index:
                continue  # a duplicate inside the batch: filled in from its first copy below
            first_index[order.order_id] = i
            view = features.view(order, entities[i], working)
            updates = features.updates(order, entities[i])
            if overlay:
                agg.apply_updates(working, updates)
            # Against what the store held, not the overlay: a batch-mate's write may still fail.
            updates = agg.settled_minimums_dropped(updates, snapshot)
            fresh.append((i, view, features.compute(view), updates))

        if fresh:
            rows = np.vstack([row for _, _, row, _ in fresh])
            scores = model.scores(rows)
            contributions = model.contributions(rows)
            # One extra batched predict; the shadow needs no explanation, so no contributions.
            shadow_scores = shadow.scores(rows) if shadow is not None else None
            decided_at = self._clock()
            for n, ((i, view, row, updates), score, contrib) in enumerate(
                zip(fresh, scores, contributions, strict=True)
            ):
                hits = rules.evaluate(view, row)
                decision = decide(
                    order_id=view.order.order_id,
                    score=float(score),
                    hits=hits,
                    reasons=explain(row, contrib),
                    thresholds=model.thresholds,
                    model_version=model.version,
                    degraded=degraded,
                    decided_at=decided_at,
                )
                verdict = None
                if shadow is not None and shadow_scores is not None:
                    shadow_score = float(shadow_scores[n])
                    verdict = ShadowVerdict(
                        shadow.version, round(shadow_score, 6), combine(shadow_score, hits, shadow.thresholds)
                    )
                results[i] = ScoredOrder(view.order, decision, updates, features=row, shadow=verdict)
        for i, order in enumerate(orders):
            if i not in results:
                first = results[first_index[order.order_id]]
                results[i] = ScoredOrder(order, first.decision, replay=True, repeat=True)
        return [results[i] for i in range(len(orders))]

    def commit(self, scored: ScoredOrder) -> Decision:
        """Store a prepared decision once and send it to review if it needs a human.

        A replayed REVIEW decision is sent to review again: the queue is at-least-once (the first
        send may have failed after the write), and reviewers' tooling dedupes by order id.
        """
        decision = scored.decision
        if scored.repeat:
            return decision
        if not scored.replay:
            try:
                # The order is kept for training on production traffic, never with raw personal data.
                self._store.commit(decision, scored.updates, pseudonymise(scored.order, self._hasher))
            except AlreadyDecidedError:
                stored = self._store.get_decision(decision.order_id)
                if stored is None:  # pragma: no cover - the write failed on an item that exists
                    raise
                decision = stored
        if decision.decision is DecisionKind.REVIEW:
            self._review_queue.submit(decision, scored.order)
        return decision

"""Point-in-time replay: history through the serving feature code, one order at a time.

Orders are replayed in time order against an in-memory store with the same container layout and
update arithmetic as the Features table, so each order sees exactly the aggregates of the orders
before it, as serving would have seen them. This is how training gets its feature matrix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from dozor.domain import features, rules
from dozor.domain.aggregates import InMemoryAggregates
from dozor.domain.contracts import Order
from dozor.domain.feedback import Label

# Training needs stable hashes, not secret ones: any fixed key gives the same equalities.
REPLAY_HASH_KEY = b"dozor-replay"


@dataclass(frozen=True)
class ReplayResult:
    order_ids: list[str]
    matrix: np.ndarray  # (orders, features), float32, `features.FEATURE_NAMES` order
    rule_hits: list[list[rules.RuleHit]]


def replay(
    orders: Iterable[Order],
    labels: Sequence[Label] = (),
    hasher: features.PiiHasher | None = None,
) -> ReplayResult:
    """Feature rows and rule hits for ``orders``, each computed from strictly earlier orders.

    ``labels`` will feed the label-based features (only labels reported before an order count
    for it); they are accepted and not yet used.
    """
    del labels
    hasher = hasher or features.PiiHasher(REPLAY_HASH_KEY)
    store = InMemoryAggregates()
    ordered = sorted(orders, key=lambda o: o.created_at)
    matrix = np.empty((len(ordered), len(features.FEATURE_NAMES)), dtype=np.float32)
    hits: list[list[rules.RuleHit]] = []
    for i, order in enumerate(ordered):
        entities = features.identify(order, hasher)
        # The whole store is the snapshot: summarise reads only the containers serving reads.
        view = features.view(order, entities, store.items)
        matrix[i] = features.compute(view)
        hits.append(rules.evaluate(view, matrix[i]))
        store.apply(features.updates(order, entities))
    return ReplayResult([o.order_id for o in ordered], matrix, hits)

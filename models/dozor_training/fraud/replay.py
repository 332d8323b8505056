"""Point-in-time replay: history through the serving feature code, one order at a time.

Orders are replayed in time order against an in-memory store with the same container layout and
update arithmetic as the Features table, so each order sees exactly the aggregates of the orders
before it, as serving would have seen them. Fraud labels and parcel losses are applied at the
moment they were reported, against the entities of the order they name, exactly as the feedback
function applies them in serving: an order sees only the labels reported before it. This is how
training, backtests and `score-batch` get their feature matrix.

What serving sees is defined *by arrival* (see `dozor.domain.aggregates`): an order is scored on
the orders stored before it, i.e. the earlier batches plus the batch-mates created before it.
When orders arrive in time order that is exactly the point-in-time view by ``created_at`` that
training replays. When they arrive late (SQS reorders across batches), the orders scored before a
late one never see it and cannot be re-scored; ``replay(..., arrival=True)`` over
`serving_sequence` of the batches as delivered models exactly that, within `MAX_ARRIVAL_SKEW`.
"""

from __future__ import annotations

import heapq
import itertools
import multiprocessing
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dozor.adapters.memory import InMemoryAggregates
from dozor.domain import aggregates as agg
from dozor.domain.clock import HOUR, from_epoch
from dozor.domain.contracts import Order
from dozor.domain.feedback import Label, Loss
from dozor.domain.fraud import features, rules
from dozor.domain.privacy import PiiHasher

# Training needs stable hashes, not secret ones: any fixed key gives the same equalities.
REPLAY_HASH_KEY = b"dozor-replay"

_BLOCK_ROWS = 65_536  # the feature matrix grows in blocks, so an unsized stream needs no copies
_EVICT_EVERY = HOUR  # how often (in history time) expired containers are dropped

# How far behind the newest order an order may arrive and still be replayed as serving saw it:
# the slack the stored buckets are kept for beyond their windows (`aggregates.MAX_ARRIVAL_SKEW`).
MAX_ARRIVAL_SKEW = agg.MAX_ARRIVAL_SKEW


class OutOfOrderError(ValueError):
    """A streamed history was not in time order."""


@dataclass(frozen=True)
class ReplayResult:
    order_ids: list[str]
    created_at: np.ndarray  # epoch seconds, float64
    amounts_rub: np.ndarray  # float64
    buyer_ids: list[str]
    matrix: np.ndarray  # (orders, features), float32, `features.FEATURE_NAMES` order
    rule_hits: list[list[rules.RuleHit]]

    def __len__(self) -> int:
        return len(self.order_ids)


class ExpiringAggregates(InMemoryAggregates):
    """The in-memory store, forgetting buckets once no window reads them any more.

    A month of a million orders leaves tens of millions of 5-minute, hourly and daily buckets
    behind; nothing reads them after their last window has passed (plus the late-arrival slack),
    so the items written since the last eviction are pruned as the store's writes prune them in
    DynamoDB (`aggregates.stale_attributes`). Lifetime totals and `first_seen` stay for good.
    """

    def __init__(self) -> None:
        super().__init__()
        self._touched: set[agg.Key] = set()

    def apply(self, updates: Iterable[agg.ContainerUpdate]) -> None:
        updates = list(updates)
        self._touched.update(u.key for u in updates)
        agg.apply_updates(self.items, updates)

    def evict(self, now: float) -> None:
        """Drop the buckets no order from ``now`` on reads, in the items written since last time."""
        slot = int(now) // agg.FIVE_MINUTES
        items = self.items
        for key in self._touched:
            item = items.get(key)
            if item is not None:
                agg.prune(item, slot)
        self._touched.clear()


def _verdicts(labels: Sequence[Label], losses: Sequence[Loss]) -> dict[str, list[tuple[float, str]]]:
    """Per order, the labels that move aggregates: (reported_at epoch, FRAUD | LOSS)."""
    pending: dict[str, list[tuple[float, str]]] = {}
    for label in labels:
        if label.is_fraud:  # a legit verdict is stored, but counts for nothing
            pending.setdefault(label.order_id, []).append((label.reported_at.timestamp(), agg.FRAUD))
    for loss in losses:
        pending.setdefault(loss.order_id, []).append((loss.reported_at.timestamp(), agg.LOSS))
    return pending


def replay(
    orders: Iterable[Order],
    labels: Sequence[Label] = (),
    losses: Sequence[Loss] = (),
    hasher: PiiHasher | None = None,
    kinds: frozenset[str] | None = None,
    *,
    arrival: bool = False,
) -> ReplayResult:
    """Feature rows and rule hits for ``orders``, each computed from strictly earlier orders and labels.

    A list or tuple is sorted by ``created_at`` first; any other iterable must already be in time
    order (a stream from a history file is), or OutOfOrderError is raised. With ``kinds``, only
    those entity kinds are tracked (the features of the others stay NaN) and no rules are run:
    that is one partition of `replay_parallel`.

    With ``arrival``, ``orders`` are taken in the order serving stored them (`serving_sequence`):
    each order sees the orders before it in that sequence, whatever their ``created_at``; a
    repeated order id is counted and returned once (its first copy); labels count from when the
    newest order so far was placed; an order more than `MAX_ARRIVAL_SKEW` older than the newest
    raises OutOfOrderError.
    """
    hasher = hasher or PiiHasher(REPLAY_HASH_KEY)
    if isinstance(orders, list | tuple) and not arrival:
        orders = sorted(orders, key=lambda o: o.created_at)
    seen: set[str] = set()
    store = ExpiringAggregates()
    pending = _verdicts(labels, losses)
    due: list[tuple[float, int, str, tuple[agg.Entity, ...]]] = []  # heap of reported labels
    sequence = itertools.count()  # heap tie-breaker: entities do not compare
    blocks: list[np.ndarray] = []
    order_ids: list[str] = []
    created: list[float] = []
    amounts: list[float] = []
    buyers: list[str] = []
    hits: list[list[rules.RuleHit]] = []
    width = len(features.FEATURE_NAMES)
    block = np.empty((0, width), dtype=np.float32)
    row_in_block = 0
    last = -np.inf
    next_eviction = -np.inf
    # The measured hot loop of training (`make bench`: µs per order, against reading the file):
    # kept as one function so nothing per order costs a call more than it must.
    for order in orders:
        now = order.created_at.timestamp()
        if arrival:
            if order.order_id in seen:
                continue  # serving returns the first decision and counts nothing twice
            seen.add(order.order_id)
            if now < last - MAX_ARRIVAL_SKEW:
                raise OutOfOrderError(f"order {order.order_id} arrived over {MAX_ARRIVAL_SKEW} s late")
            clock = max(last, now)
        elif now < last:
            raise OutOfOrderError(f"order {order.order_id} is older than the order before it")
        else:
            clock = now
        last = clock
        while due and due[0][0] < clock:
            reported, _, verdict, labelled = heapq.heappop(due)
            store.apply(features.label_updates(labelled, from_epoch(reported), verdict))
        if clock >= next_eviction:
            # A late order still reads its windows: keep what it may read (nothing, in time order).
            store.evict(clock - MAX_ARRIVAL_SKEW if arrival else clock)
            next_eviction = clock + _EVICT_EVERY
        if row_in_block == len(block):
            block = np.empty((_BLOCK_ROWS, width), dtype=np.float32)
            blocks.append(block)
            row_in_block = 0
        every = features.identify(order, hasher)
        # A partition tracks only its kinds, but their links name entities of any kind.
        entities = every if kinds is None else {k: e for k, e in every.items() if k in kinds}
        # The whole store is the snapshot: summarise reads only the containers serving reads.
        view = features.view(order, entities, store.items)
        row = block[row_in_block]
        row[:] = features.compute(view)
        row_in_block += 1
        if kinds is None:
            hits.append(rules.evaluate(view, row))
        store.apply(features.updates(order, every, kinds))
        for reported, verdict in pending.pop(order.order_id, ()):
            heapq.heappush(due, (reported, next(sequence), verdict, tuple(entities.values())))
        order_ids.append(order.order_id)
        created.append(now)
        amounts.append(order.amount_rub)
        buyers.append(order.buyer.id)
    matrix = np.concatenate(blocks)[: len(order_ids)] if blocks else np.empty((0, width), np.float32)
    return ReplayResult(
        order_ids=order_ids,
        created_at=np.asarray(created, dtype=np.float64),
        amounts_rub=np.asarray(amounts, dtype=np.float64),
        buyer_ids=buyers,
        matrix=matrix,
        rule_hits=hits,
    )


def serving_sequence(batches: Iterable[Sequence[Order]]) -> list[Order]:
    """The order in which serving stores orders delivered in these batches (an API call is a batch
    of one): batch after batch, each in ``created_at`` order (ties as delivered), as
    `OrderScoring.prepare` scores a batch. `replay` with ``arrival=True`` takes this sequence.
    """
    return [order for batch in batches for order in sorted(batch, key=lambda o: o.created_at)]


# Every feature depends on the aggregates of at most one entity kind (the rest are the order's
# own fields), so replaying disjoint sets of kinds in parallel and taking each column from the
# partition that computed it gives exactly the single-pass matrix; a test holds this.
PARTITIONS = (frozenset({"seller", "device", "email"}), frozenset({"buyer", "card", "address", "ip"}))


def replay_parallel(
    orders: Sequence[Order] | Callable[[], Iterable[Order]],
    labels: Sequence[Label] = (),
    losses: Sequence[Loss] = (),
    hasher: PiiHasher | None = None,
) -> ReplayResult:
    """`replay` on two cores: a forked child replays half the entity kinds, this process the other.

    ``orders`` is a sequence, or a function returning a fresh time-ordered stream (each process
    reads its own). Where fork is unavailable it falls back to one process.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return replay(orders() if callable(orders) else orders, labels, losses, hasher)
    hasher = hasher or PiiHasher(REPLAY_HASH_KEY)
    with tempfile.TemporaryDirectory(prefix="dozor-replay-") as tmp:
        child_matrix = Path(tmp) / "matrix.npy"
        child = multiprocessing.get_context("fork").Process(
            target=_replay_partition,
            args=(orders, labels, losses, hasher, PARTITIONS[1], child_matrix),
            daemon=True,
        )
        child.start()
        try:
            mine = replay(orders() if callable(orders) else orders, labels, losses, hasher, PARTITIONS[0])
        finally:
            child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"the replay partition {sorted(PARTITIONS[1])} failed ({child.exitcode})")
        matrix = mine.matrix
        theirs = np.load(child_matrix, mmap_mode="r")
        if theirs.shape != matrix.shape:
            raise RuntimeError("the replay partitions saw different orders")
        missing = np.isnan(matrix)
        matrix[missing] = theirs[missing]
    hits = [rules.evaluate_row(row) for row in matrix]
    return ReplayResult(mine.order_ids, mine.created_at, mine.amounts_rub, mine.buyer_ids, matrix, hits)


def _replay_partition(
    orders: Sequence[Order] | Callable[[], Iterable[Order]],
    labels: Sequence[Label],
    losses: Sequence[Loss],
    hasher: PiiHasher,
    kinds: frozenset[str],
    out: Path,
) -> None:
    try:
        result = replay(orders() if callable(orders) else orders, labels, losses, hasher, kinds)
    except Exception:  # the parent reads the same orders and reports the same error
        sys.exit(1)
    np.save(out, result.matrix)

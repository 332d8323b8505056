"""Columnar point-in-time replay: the per-order replay's feature matrix, computed per entity kind with
NumPy arrays instead of an in-memory store walked order by order.

`dozor_training.fraud.replay` runs every order through the serving code against an in-memory
Features table: exact by construction, and ~300 µs an order. Here the work is split in two:

1. **Per order, in Python, the serving code itself**: `features.identify` (the entities, personal
   values hashed) and `features.compute` on an order without history, which gives every feature
   that depends on the order alone. Two processes share this by 4,096-order chunks.
2. **Per entity kind, vectorised** (`columnar_kernel.summarise`): the windows, lifetime totals,
   labels and link counts of every order at once, then folded into feature columns as
   `features.compute` folds one order's aggregates.

Every feature depends on the order and on the aggregates of at most one entity kind, so the
columns of the kinds are independent; the kernel takes whole entities, so it can run per entity
partition (`dozor_training.fraud.spark_engine` runs it as Spark tasks). The matrix equals the
per-order replay's exactly, in time order and in arrival order (``arrival=True``): a property
test compares them on random histories, NaN-aware and bit for bit.

Why NumPy: the replay is sorts, searchsorted and segmented running sums over int64/float64
arrays; NumPy does each in C, states its summation order (`np.cumsum` adds left to right), and
serving already ships it. Arrow would add nothing a sort and a searchsorted do not do; Polars
would add a dependency for group-bys whose floating-point summation order is not specified,
and the sums here must be bit-equal.
"""

from __future__ import annotations

import multiprocessing
import pickle
import sys
import tempfile
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dozor.domain.contracts import Order
from dozor.domain.feedback import Label, Loss
from dozor.domain.fraud import features, rules
from dozor.domain.privacy import PiiHasher
from dozor_training.fraud.columnar_kernel import (
    Aggregates,
    EntityLabels,
    EntityOrders,
    feature_columns,
    no_labels,
    summarise,
)
from dozor_training.fraud.columnar_links import member_codes
from dozor_training.fraud.replay import MAX_ARRIVAL_SKEW, REPLAY_HASH_KEY, OutOfOrderError, ReplayResult

KINDS = features.ENTITY_KINDS
_LINKED = sorted({other for linked in features.LINKS.values() for other in linked})  # kinds linked to
_CHUNK = 4096  # orders a worker takes at a time (workers alternate chunks)
_MEMO_LIMIT = 500_000  # hashed values remembered per run; the cache restarts past this

Orders = Sequence[Order] | Callable[[], Iterable[Order]] | Iterable[Order]


class _MemoHasher(PiiHasher):
    """The replay's keyed hash, remembering recent values: repeat buyers reuse cards, emails and
    addresses, and HMAC-SHA256 is a third of the per-order cost otherwise."""

    def __init__(self, inner: PiiHasher) -> None:
        self._inner = inner
        self._memo: dict[tuple[str, str], str] = {}

    def __call__(self, kind: str, value: str) -> str:
        key = (kind, value)
        hashed = self._memo.get(key)
        if hashed is None:
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            hashed = self._memo[key] = self._inner(kind, value)
        return hashed


@dataclass
class _Part:
    """What one worker extracted from its chunks of the stream, by stream position."""

    positions: np.ndarray  # int64 stream positions of its orders
    codes: dict[str, np.ndarray]  # kind -> int64 code into ``values`` per order, -1 if none
    values: dict[str, list[str]]  # kind -> the entity values it met (hashed if personal), by code
    rows: Path  # raw float32 rows, one per position: `features.compute` of the order with no history


@dataclass
class _Stream:
    """What the parent records of every order of the stream (cheap attributes only)."""

    order_ids: list[str]
    created: np.ndarray  # float64 created_at timestamps
    amounts: np.ndarray  # float64 RUB
    buyer_ids: list[str]


@dataclass
class OrderColumns:
    """A history as columns, one element per replayed order in sequence order: what the entity
    kernels need, and the order-only feature rows they complete into the matrix."""

    order_ids: list[str]
    created: np.ndarray  # float64 created_at timestamps
    amounts: np.ndarray  # float64 RUB
    buyer_ids: list[str]
    matrix: np.ndarray  # float32 (orders, features): order-only features; the rest NaN until filled
    codes: dict[str, np.ndarray]  # kind -> int64 entity code per order, -1 where the order names none
    members: dict[str, np.ndarray]  # kind -> link-sketch member code per entity code (`member_codes`)
    values: dict[str, list[str]]  # kind -> the entity values the codes stand for (hashed if personal)
    labels: EntityLabels  # every label event, ``entity`` holding the labelled order's place

    def result(self) -> ReplayResult:
        """The replay's answer once every kind's features are filled in (both engines)."""
        return ReplayResult(
            order_ids=self.order_ids,
            created_at=self.created,
            amounts_rub=self.amounts,
            buyer_ids=self.buyer_ids,
            matrix=self.matrix,
            rule_hits=[rules.evaluate_row(row) for row in self.matrix],
        )


def replay_columnar(
    orders: Orders,
    labels: Sequence[Label] = (),
    losses: Sequence[Loss] = (),
    hasher: PiiHasher | None = None,
    *,
    arrival: bool = False,
    workers: int = 2,
) -> ReplayResult:
    """`replay.replay`'s result (matrix, ids, times, rule hits), computed column-wise.

    ``orders`` as for `replay` (a list or tuple is sorted unless ``arrival``), or a function
    returning a fresh stream each call (`OrderHistory.iter_orders`), which lets ``workers``
    processes each read it; a one-shot iterator is read by one process.
    """
    columns = order_columns(orders, labels, losses, hasher, arrival=arrival, workers=workers)
    for kind, rows, orders_of_kind, aggregates in kind_aggregates(columns):
        fill(columns.matrix, kind, rows, orders_of_kind, aggregates)
    return columns.result()


def order_columns(
    orders: Orders,
    labels: Sequence[Label] = (),
    losses: Sequence[Loss] = (),
    hasher: PiiHasher | None = None,
    *,
    arrival: bool = False,
    workers: int = 2,
) -> OrderColumns:
    """Read the orders once (per worker) through the serving code, and lay the history out as columns."""
    memo = _MemoHasher(hasher or PiiHasher(REPLAY_HASH_KEY))
    if isinstance(orders, list | tuple) and not arrival:
        orders = sorted(orders, key=lambda o: o.created_at)
    reusable = isinstance(orders, list | tuple) or callable(orders)
    if not reusable or "fork" not in multiprocessing.get_all_start_methods():
        workers = 1
    with tempfile.TemporaryDirectory(prefix="dozor-columnar-") as tmp:
        stream, parts = _extract(orders, memo, max(1, workers), Path(tmp))
        keep = _sequence(stream, arrival)
        matrix = _order_rows(parts, keep, len(stream.created))
    created = stream.created[keep]
    order_ids = [stream.order_ids[i] for i in keep.tolist()]
    codes, values = _entity_codes(parts, keep, len(stream.created))
    del parts
    clock = np.maximum.accumulate(created) if len(created) else created
    return OrderColumns(
        order_ids=order_ids,
        created=created,
        amounts=stream.amounts[keep],
        buyer_ids=[stream.buyer_ids[i] for i in keep.tolist()],
        matrix=matrix,
        codes=codes,
        members={kind: member_codes(values[kind]) for kind in _LINKED},
        values=values,
        labels=_label_events(order_ids, labels, losses, clock),
    )


def kind_orders(columns: OrderColumns, kind: str, rows: np.ndarray) -> EntityOrders:
    """The orders (at ``rows``) naming an entity of ``kind``, with the links its containers keep."""
    created = columns.created[rows]
    links = {}
    for other in features.LINKS.get(kind, ()):
        code = columns.codes[other][rows]
        member = np.full(len(code), -1, dtype=np.int64)
        named = code >= 0
        member[named] = columns.members[other][code[named]]
        links[other] = member
    return EntityOrders(
        entity=columns.codes[kind][rows],
        seq=rows,
        epoch=np.floor(created).astype(np.int64),  # int(created_at.timestamp()), as serving buckets
        created=created,
        amount=columns.amounts[rows],
        links=links,
    )


def kind_labels(columns: OrderColumns, kind: str) -> EntityLabels:
    """The label events against entities of ``kind`` (those of orders naming one)."""
    events = columns.labels
    entity = columns.codes[kind][events.entity]
    named = entity >= 0
    return EntityLabels(
        entity[named], events.reported[named], events.visible_from[named], events.fraud[named]
    )


def kind_aggregates(columns: OrderColumns) -> Iterable[tuple[str, np.ndarray, EntityOrders, Aggregates]]:
    """Per entity kind: the orders naming one (their places) and their aggregates."""
    for kind in KINDS:
        rows = np.flatnonzero(columns.codes[kind] >= 0)
        if len(rows):
            orders = kind_orders(columns, kind, rows)
            yield kind, rows, orders, summarise(orders, kind_labels(columns, kind))


def fill(
    matrix: np.ndarray, kind: str, rows: np.ndarray, orders: EntityOrders, aggregates: Aggregates
) -> None:
    """Write one kind's feature columns into the matrix rows of its orders."""
    for name, column in feature_columns(kind, orders, aggregates).items():
        matrix[rows, features.FEATURE_INDEX[name]] = column


def _label_events(
    order_ids: Sequence[str], labels: Sequence[Label], losses: Sequence[Loss], clock: np.ndarray
) -> EntityLabels:
    """Labels that move aggregates, ``entity`` holding the labelled order's place.

    As in `replay`: a label counts from the first order after its own whose clock (the newest
    created_at so far) is past the report; a legit verdict counts for nothing."""
    place: dict[str, int] = {}
    for i, order_id in enumerate(order_ids):
        place.setdefault(order_id, i)  # the first copy carries the labels
    # A label of an order outside the history names no entities: it counts for nothing.
    events = [
        (place[x.order_id], x.reported_at.timestamp(), True)
        for x in labels
        if x.is_fraud and x.order_id in place
    ]
    events += [(place[x.order_id], x.reported_at.timestamp(), False) for x in losses if x.order_id in place]
    if not events:
        return no_labels()
    where = np.array([e[0] for e in events], dtype=np.int64)
    reported = np.array([e[1] for e in events], dtype=np.float64)
    fraud = np.array([e[2] for e in events], dtype=bool)
    visible_from = np.maximum(where + 1, np.searchsorted(clock, reported, "right"))
    return EntityLabels(where, reported, visible_from, fraud)


def _sequence(stream: _Stream, arrival: bool) -> np.ndarray:
    """The stream positions replayed, checking the order as `replay` does."""
    created = stream.created
    if not arrival:
        late = np.flatnonzero(np.diff(created) < 0)
        if len(late):
            order_id = stream.order_ids[int(late[0]) + 1]
            raise OutOfOrderError(f"order {order_id} is older than the order before it")
        return np.arange(len(created))
    first: dict[str, int] = {}
    for i, order_id in enumerate(stream.order_ids):
        first.setdefault(order_id, i)  # serving returns the first decision and counts nothing twice
    keep = np.fromiter(sorted(first.values()), dtype=np.int64, count=len(first))
    kept = created[keep]
    if len(kept):
        before = np.maximum.accumulate(kept)[:-1]
        late = np.flatnonzero(kept[1:] < before - MAX_ARRIVAL_SKEW)
        if len(late):
            order_id = stream.order_ids[int(keep[late[0] + 1])]
            raise OutOfOrderError(f"order {order_id} arrived over {MAX_ARRIVAL_SKEW} s late")
    return keep


# --- per-order extraction ---------------------------------------------------------------------


def _extract(orders: Orders, hasher: PiiHasher, workers: int, tmp: Path) -> tuple[_Stream, list[_Part]]:
    """Stream every order once per worker; each worker identifies and computes its own chunks."""
    children = []
    for number in range(1, workers):
        out = tmp / f"part-{number}.pickle"
        child = multiprocessing.get_context("fork").Process(
            target=_extract_child, args=(orders, hasher, number, workers, out), daemon=True
        )
        child.start()
        children.append((child, out))
    try:
        stream, part = _extract_part(orders, hasher, 0, workers, tmp / "rows-0.f32", record=True)
    finally:
        for child, _ in children:
            child.join()
    parts = [part]
    for child, out in children:
        if child.exitcode != 0:
            raise RuntimeError(f"a replay worker failed ({child.exitcode})")
        with out.open("rb") as f:
            parts.append(pickle.load(f))
    return stream, parts


def _extract_part(
    orders: Orders, hasher: PiiHasher, number: int, workers: int, rows_file: Path, *, record: bool
) -> tuple[_Stream, _Part]:
    """Identify and compute the orders of this worker's chunks, their order-only rows written to
    ``rows_file`` (raw float32) rather than held; with ``record``, note every order's id and time."""
    source = orders() if callable(orders) else orders
    order_ids: list[str] = []
    created: list[float] = []
    amounts: list[float] = []
    buyers: list[str] = []
    positions = array("q")
    index: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
    codes = {kind: array("q") for kind in KINDS}
    per_kind = [(kind, index[kind], codes[kind].append) for kind in KINDS]
    width = len(features.FEATURE_NAMES)
    block = np.empty((_CHUNK, width), dtype=np.float32)
    row = 0
    sink = rows_file.open("wb")
    compute, identify, view = features.compute, features.identify, features.OrderView
    # The hot loop: everything per order that is not the serving code itself is kept minimal.
    for pos, order in enumerate(source):
        if record:
            order_ids.append(order.order_id)
            created.append(order.created_at.timestamp())
            amounts.append(order.amount_rub)
            buyers.append(order.buyer.id)
        if (pos // _CHUNK) % workers != number:
            continue
        if row == _CHUNK:
            sink.write(block.data)
            row = 0
        entities = identify(order, hasher)
        for kind, known, append in per_kind:
            entity = entities.get(kind)
            if entity is None:
                append(-1)
            else:
                code = known.get(entity.value)
                if code is None:
                    code = known[entity.value] = len(known)
                append(code)
        block[row] = compute(view(order, {}))
        row += 1
        positions.append(pos)
    sink.write(block[:row].data)
    sink.close()
    stream = _Stream(
        order_ids, np.asarray(created, dtype=np.float64), np.asarray(amounts, dtype=np.float64), buyers
    )
    part = _Part(
        positions=np.frombuffer(positions, dtype=np.int64),
        codes={kind: np.frombuffer(codes[kind], dtype=np.int64) for kind in KINDS},
        values={kind: list(index[kind]) for kind in KINDS},
        rows=rows_file,
    )
    return stream, part


def _extract_child(orders: Orders, hasher: PiiHasher, number: int, workers: int, out: Path) -> None:
    try:
        _, part = _extract_part(orders, hasher, number, workers, out.with_suffix(".f32"), record=False)
        with out.open("wb") as f:
            pickle.dump(part, f, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # the parent reads the same orders and reports the same error
        sys.exit(1)


def _order_rows(parts: list[_Part], keep: np.ndarray, n: int) -> np.ndarray:
    """The order-only feature rows of the replayed positions, in sequence order, read from the
    workers' files a chunk at a time (the matrix is the only copy held)."""
    width = len(features.FEATURE_NAMES)
    at = np.full(n, -1, dtype=np.int64)
    at[keep] = np.arange(len(keep))
    matrix = np.empty((len(keep), width), dtype=np.float32)
    buffer = np.empty((_CHUNK, width), dtype=np.float32)
    for part in parts:
        with part.rows.open("rb") as f:
            for offset in range(0, len(part.positions), _CHUNK):
                chunk = buffer[: min(_CHUNK, len(part.positions) - offset)]
                f.readinto(chunk.data.cast("B"))
                target = at[part.positions[offset : offset + len(chunk)]]
                chosen = target >= 0
                matrix[target[chosen]] = chunk[chosen]
    return matrix


def _entity_codes(
    parts: list[_Part], keep: np.ndarray, n: int
) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Per kind, every replayed order's entity code in sequence order (-1: none), and the values
    the codes stand for: the workers' codes merged into the first worker's."""
    codes: dict[str, np.ndarray] = {}
    values: dict[str, list[str]] = {}
    for kind in KINDS:
        merged = np.full(n, -1, dtype=np.int64)
        known = {value: code for code, value in enumerate(parts[0].values[kind])}
        for part in parts:
            remap = np.array([known.setdefault(v, len(known)) for v in part.values[kind]], dtype=np.int64)
            local = part.codes[kind]
            merged[part.positions] = np.where(
                local >= 0, remap[np.maximum(local, 0)] if len(remap) else -1, -1
            )
        codes[kind] = merged[keep]
        values[kind] = list(known)
    return codes, values

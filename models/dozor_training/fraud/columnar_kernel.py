"""The aggregates of one entity kind for every order at once: the columnar `aggregates.summarise`.

Serving reads an entity's containers and folds their buckets into windows (`dozor.domain.aggregates`);
this module computes the same numbers for all the orders of one entity kind with array code:
orders and labels are *writes* into (entity, bucket) cells, orders are also *readers*, and a reader
sees the writes stored before it (``visible_from <= seq``) whose bucket lies in its window.

The input may be any set of whole entities (every order and label of each entity it holds), which
is what makes it one task per entity partition, on one machine or in a Spark job.

Sums of amounts are folded in exactly serving's order, so the result is bit-equal, not merely
close: a bucket accumulates its orders in arrival order (``item[attr] + delta``), and a window
adds its buckets newest first (`aggregates.summarise`; the fold would take groups of buckets
kept in separate items, summed group by group, should the layout split an entity again).
Counts are whole numbers, exact in any order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from dozor.domain import aggregates as agg
from dozor.domain.clock import DAY, HOUR
from dozor.domain.fraud import features
from dozor_training.fraud.columnar_links import link_counts

_LONG_BUCKET = 512  # buckets with more orders than this are accumulated one by one with np.cumsum
_KEY_LIMIT = 2**62


@dataclass(frozen=True)
class EntityOrders:
    """The orders of one entity kind that name an entity of it (aligned arrays)."""

    entity: np.ndarray  # int64 code of the entity
    seq: np.ndarray  # int64 place in the arrival sequence (unique; time order in a plain replay)
    epoch: np.ndarray  # int64 whole seconds of created_at, as serving buckets it
    created: np.ndarray  # float64 created_at timestamp, as serving measures ages
    amount: np.ndarray  # float64 amount in RUB
    # linked kind -> the code of the sketch member the order adds to its entity's links, -1 if none
    links: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class EntityLabels:
    """Fraud labels and parcel losses against entities of the kind (aligned arrays)."""

    entity: np.ndarray  # int64
    reported: np.ndarray  # float64 epoch seconds
    visible_from: np.ndarray  # int64: the first place in the sequence whose order sees the label
    fraud: np.ndarray  # bool: True for a fraud label, False for a parcel loss


def no_labels() -> EntityLabels:
    empty = np.zeros(0, dtype=np.int64)
    return EntityLabels(empty, empty.astype(np.float64), empty, empty.astype(bool))


@dataclass(frozen=True)
class Aggregates:
    """`aggregates.EntityAggregates` for every order of `EntityOrders`, as columns (float64)."""

    counts: dict[str, np.ndarray]  # window name -> orders
    amounts: dict[str, np.ndarray]  # "24h", "30d" -> sum of amounts
    first_seen: np.ndarray  # epoch seconds of the earliest stored order; NaN when none
    lifetime_orders: np.ndarray
    links: dict[str, np.ndarray]  # linked kind -> distinct values over the months read
    fraud_labels: dict[str, np.ndarray]  # "7d", "30d"
    losses: dict[str, np.ndarray]  # "30d"
    lifetime_fraud_labels: np.ndarray


def summarise(orders: EntityOrders, labels: EntityLabels) -> Aggregates:
    """What each order's windows say about its entity just before it (see the module docstring)."""
    hour, day = orders.epoch // HOUR, orders.epoch // DAY
    visible_from = orders.seq + 1
    # Each window at its bucket resolution: (name, buckets of every order, buckets read, how its
    # buckets group into the items summed one after another, where its amounts are a feature).
    windows: tuple[tuple[str, np.ndarray, int, _Container | None], ...] = (
        ("1h", orders.epoch // agg.FIVE_MINUTES, HOUR // agg.FIVE_MINUTES, None),
        ("24h", hour, DAY // HOUR, _one_item),
        ("7d", day, 7, None),
        ("30d", day, 30, _one_item),
    )
    counts: dict[str, np.ndarray] = {}
    amounts: dict[str, np.ndarray] = {}
    in_time_order = bool(np.all(np.diff(orders.epoch) >= 0)) and bool(np.all(np.diff(orders.seq) > 0))
    for window, buckets, width, container in windows:
        value = orders.amount if container else None
        cells = _Cells(orders.entity, buckets, visible_from, value, in_time_order=in_time_order)
        counts[window], summed = cells.window(orders.entity, buckets, orders.seq, width, container, own=True)
        if summed is not None:
            amounts[window] = summed
    first_seen, lifetime = _profile(orders)
    label_day = np.floor(labels.reported).astype(np.int64) // DAY
    fraud_labels: dict[str, np.ndarray] = {}
    losses: dict[str, np.ndarray] = {}
    for is_fraud, into, label_windows in ((True, fraud_labels, (7, 30)), (False, losses, (30,))):
        chosen = labels.fraud == is_fraud
        cells = _Cells(labels.entity[chosen], label_day[chosen], labels.visible_from[chosen], None)
        for days in label_windows:
            into[f"{days}d"] = cells.window(orders.entity, day, orders.seq, days, None)[0]
    fraud = labels.fraud
    lifetime_fraud = _seen_before(labels.entity[fraud], labels.visible_from[fraud], orders.entity, orders.seq)
    return Aggregates(
        counts=counts,
        amounts=amounts,
        first_seen=first_seen,
        lifetime_orders=lifetime,
        links={
            kind: link_counts(orders.entity, orders.seq, day, member) for kind, member in orders.links.items()
        },
        fraud_labels=fraud_labels,
        losses=losses,
        lifetime_fraud_labels=lifetime_fraud,
    )


_Container = Callable[[np.ndarray], np.ndarray]


def _one_item(buckets: np.ndarray) -> np.ndarray:
    """Every bucket of an entity lives in its one item: a window's buckets are summed newest first
    into one partial sum, added to the window's total once (`aggregates.summarise`)."""
    return np.zeros(len(buckets), dtype=np.int64)


class _Cells:
    """Writes grouped into (entity, bucket) cells, each cell's writes in the order they became visible."""

    def __init__(
        self,
        entity: np.ndarray,
        bucket: np.ndarray,
        visible_from: np.ndarray,
        value: np.ndarray | None,
        *,
        in_time_order: bool = False,
    ) -> None:
        # ``in_time_order``: buckets never go down along ``visible_from`` and the readers are the
        # writes (a replay in time order), so a reader's older cells are wholly visible to it.
        self.in_time_order = in_time_order
        n = len(entity)
        self.empty = n == 0
        self.running: np.ndarray | None = None
        if self.empty:
            return
        self.b0 = int(bucket.min()) - 1
        self.span = int(bucket.max()) - self.b0 + 1
        _require_fits((int(entity.max()) + 1) * self.span)
        cell_key = entity * self.span + (bucket - self.b0)
        if n < 2 or bool(np.all(visible_from[1:] >= visible_from[:-1])):
            order = np.argsort(cell_key, kind="stable")  # already in visible order: keep it per cell
        else:
            order = np.lexsort((visible_from, cell_key))
        e, b, v = entity[order], bucket[order], visible_from[order]
        new = np.ones(n, dtype=bool)
        new[1:] = (e[1:] != e[:-1]) | (b[1:] != b[:-1])
        self.starts = np.flatnonzero(new)
        self.lengths = np.diff(np.append(self.starts, n))
        self.entity, self.bucket = e[self.starts], b[self.starts]
        self.first_visible = v[self.starts]
        self.last_visible = v[self.starts + self.lengths - 1]
        self.top = int(v.max()) + 2
        _require_fits(len(self.starts) * self.top)
        self.keys = cell_key[order][self.starts]
        self.cell_of_write = np.repeat(np.arange(len(self.starts), dtype=np.int64), self.lengths)
        self.write_keys = self.cell_of_write * self.top + v
        self.sorted_at = np.empty(n, dtype=np.int64)  # where each write (in input order) sorted to
        self.sorted_at[order] = np.arange(n)
        self.running = None if value is None else _segment_cumsum(value[order], self.starts, self.lengths)

    def window(
        self,
        entity: np.ndarray,
        bucket: np.ndarray,
        seq: np.ndarray,
        width: int,
        container: Callable[[np.ndarray], np.ndarray] | None,
        *,
        own: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Per reader: the writes it sees in its last ``width`` buckets (its own included), and with
        ``container`` their values' sum folded as serving folds it. ``own``: the readers are these
        cells' writes, in the order they were given."""
        counts = np.zeros(len(entity), dtype=np.float64)
        sums = None if self.running is None or container is None else np.zeros(len(entity))
        if self.empty:
            return counts, sums
        if own and self.in_time_order and container is None:
            # In time order a reader sees exactly the writes sorted before it in its entity, less
            # those of buckets older than its window: one binary search each.
            at = self.sorted_at
            lowest = entity * self.span + np.clip(bucket - width + 1 - self.b0, 0, self.span - 1)
            first = np.searchsorted(self.keys, lowest, "left")
            counts[:] = at - np.append(self.starts, len(at))[first]
            return counts, sums
        if own:
            # The readers are the writes themselves (orders reading before they count): a reader's
            # newest cell is its own, where it sees the writes sorted before it.
            at = self.sorted_at
            idx = np.arange(len(entity))
            cell = self.cell_of_write[at]
            first_seen: np.ndarray | None = at - self.starts[cell]
        else:
            # The newest cell of the reader's entity at or before its bucket.
            idx = np.flatnonzero(_has_any(self.entity, entity))
            key = entity[idx] * self.span + np.clip(bucket[idx] - self.b0, 0, self.span - 1)
            cell = np.searchsorted(self.keys, key, "right") - 1
            first_seen = None
        walk = _Walk(idx, cell, entity[idx], bucket[idx] - width + 1, seq[idx])
        cell_container = None
        if sums is not None and container is not None:
            walk.start_fold(container(bucket[idx]))
            cell_container = container(self.bucket)
        while walk.size:
            if first_seen is None:
                walk.drop_finished(self, counts, sums)
                if not walk.size:
                    break
                seen = self._visible(walk.cell, walk.seq)
            else:
                seen, first_seen = first_seen, None
            walk.count += seen
            if cell_container is not None and self.running is not None:
                last = self.starts[walk.cell] + np.maximum(seen, 1) - 1
                walk.fold(cell_container[walk.cell], np.where(seen > 0, self.running[last], 0.0))
            walk.cell = walk.cell - 1
        return counts, sums

    def _visible(self, cell: np.ndarray, seq: np.ndarray) -> np.ndarray:
        """How many writes of each cell a reader at ``seq`` sees."""
        if self.in_time_order:
            return np.asarray(self.lengths[cell])  # an older cell of a reader's entity was stored before it
        seen = np.where(self.last_visible[cell] <= seq, self.lengths[cell], 0)
        partial = np.flatnonzero((self.first_visible[cell] <= seq) & (self.last_visible[cell] > seq))
        if len(partial):
            c = cell[partial]
            pos = np.searchsorted(self.write_keys, c * self.top + seq[partial], "right")
            seen[partial] = pos - self.starts[c]
        return seen


class _Walk:
    """The readers still walking back through their entity's cells, and what they have summed."""

    def __init__(
        self, idx: np.ndarray, cell: np.ndarray, entity: np.ndarray, lowest: np.ndarray, seq: np.ndarray
    ) -> None:
        self.idx, self.cell, self.entity, self.lowest, self.seq = idx, cell, entity, lowest, seq
        self.count = np.zeros(len(idx), dtype=np.int64)
        self.container: np.ndarray | None = None
        self.total = self.partial = np.zeros(0)

    @property
    def size(self) -> int:
        return len(self.idx)

    def start_fold(self, container: np.ndarray) -> None:
        self.container = container
        self.total = np.zeros(len(self.idx))
        self.partial = np.zeros(len(self.idx))

    def fold(self, container: np.ndarray, value: np.ndarray) -> None:
        """Add one cell: a container's sum joins the total when the walk leaves the container."""
        new = container != self.container
        self.total = np.where(new, self.total + self.partial, self.total)
        self.partial = np.where(new, 0.0, self.partial) + value
        self.container = container

    def drop_finished(self, cells: _Cells, counts: np.ndarray, sums: np.ndarray | None) -> None:
        """Record and drop the readers whose next cell is another entity's or older than the window."""
        cell = np.maximum(self.cell, 0)
        going = (self.cell >= 0) & (cells.entity[cell] == self.entity) & (cells.bucket[cell] >= self.lowest)
        if going.all():
            return
        done = ~going
        counts[self.idx[done]] = self.count[done]
        if sums is not None and self.container is not None:
            sums[self.idx[done]] = self.total[done] + self.partial[done]
        for name in ("idx", "cell", "entity", "lowest", "seq", "count"):
            setattr(self, name, getattr(self, name)[going])
        if self.container is not None:
            self.container, self.total, self.partial = (
                self.container[going],
                self.total[going],
                self.partial[going],
            )


def _segment_cumsum(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Running sums restarting at every segment, added strictly left to right (``prev + value``),
    as a counter accumulates: the same bits as serving's bucket, where a pairwise sum would differ."""
    out = np.array(values, dtype=np.float64)
    long = lengths > _LONG_BUCKET
    for start, length in zip(starts[long].tolist(), lengths[long].tolist(), strict=True):
        out[start : start + length] = np.cumsum(out[start : start + length])  # sequential, unlike np.sum
    short = np.flatnonzero((lengths > 1) & ~long)
    by_length = short[np.argsort(-lengths[short], kind="stable")]
    first, length = starts[by_length], lengths[by_length]
    # Round r adds the r-th element of every segment longer than r: one vector step per round.
    for r in range(1, int(length[0]) if len(length) else 0):
        k = int(np.searchsorted(-length, -r, "left"))
        at = first[:k] + r
        out[at] += out[at - 1]
    return out


def _profile(orders: EntityOrders) -> tuple[np.ndarray, np.ndarray]:
    """Per order: its entity's earliest stored order (NaN if none) and how many were stored before."""
    order = np.lexsort((orders.seq, orders.entity))
    e = orders.entity[order]
    n = len(e)
    new = np.ones(n, dtype=bool)
    new[1:] = e[1:] != e[:-1]
    segment = np.cumsum(new) - 1
    start = np.flatnonzero(new)[segment]
    rank = np.arange(n) - start
    # A running minimum that restarts per entity: later entities are shifted below earlier ones.
    shift = np.int64(2**33)
    _require_fits(int(segment[-1] + 1) * int(shift) if n else 0)
    running = np.minimum.accumulate(orders.epoch[order] - segment * shift) + segment * shift
    first_seen = np.full(n, np.nan)
    earlier = rank > 0
    first_seen[earlier] = running[np.flatnonzero(earlier) - 1]
    out_first, out_rank = np.empty(n), np.empty(n)
    out_first[order] = first_seen
    out_rank[order] = rank
    return out_first, out_rank


def _seen_before(
    entity: np.ndarray, visible_from: np.ndarray, reader: np.ndarray, seq: np.ndarray
) -> np.ndarray:
    """Per reader: the writes of its entity visible at its place in the sequence (a lifetime total)."""
    out = np.zeros(len(reader))
    if len(entity) == 0:
        return out
    top = int(max(int(visible_from.max()), int(seq.max()))) + 2
    _require_fits((int(max(entity.max(), reader.max())) + 1) * top)
    keys = np.sort(entity * top + visible_from)
    asking = np.flatnonzero(_has_any(entity, reader))  # most entities have no label at all
    base = reader[asking] * top
    out[asking] = np.searchsorted(keys, base + seq[asking], "right") - np.searchsorted(keys, base, "left")
    return out


def _has_any(written: np.ndarray, reader: np.ndarray) -> np.ndarray:
    """Per reader: whether its entity code occurs among ``written``."""
    present = np.zeros(int(max(written.max(initial=-1), reader.max(initial=-1))) + 1, dtype=bool)
    present[written] = True
    return np.asarray(present[reader])


def _require_fits(product: int) -> None:
    if product >= _KEY_LIMIT:
        raise OverflowError("history too large for 64-bit cell keys; split it by entity")


def feature_columns(kind: str, orders: EntityOrders, a: Aggregates) -> dict[str, np.ndarray]:
    """The feature columns that depend on one entity kind's aggregates, for the orders naming one:
    the kind's own features and the order features built on them, as `features.compute` folds them."""
    columns = {f"{kind}_orders_{w.name}": a.counts[w.name] for w in agg.WINDOWS}
    columns[f"{kind}_amount_24h"] = a.amounts["24h"]
    columns[f"{kind}_amount_30d"] = a.amounts["30d"]
    # `if a.first_seen` in compute: no stored order (and an epoch of 0) gives an age of 0.
    known = ~np.isnan(a.first_seen) & (a.first_seen != 0)
    age = np.zeros(len(orders.created))
    age[known] = np.maximum(orders.created[known] - a.first_seen[known], 0.0) / 86400.0
    columns[f"{kind}_age_days"] = age
    columns[f"{kind}_lifetime_orders"] = a.lifetime_orders
    for other in features.LINKS.get(kind, ()):
        columns[f"{kind}_distinct_{features.PLURAL[other]}_2mo"] = a.links[other]
    columns[f"{kind}_fraud_labels_30d"] = a.fraud_labels["30d"]
    if kind in features.LIFETIME_LABEL_KINDS:
        columns[f"{kind}_fraud_labels_lifetime"] = a.lifetime_fraud_labels
    if kind == "buyer":
        columns["amount_vs_buyer_avg_30d"] = _ratio(orders.amount, a.amounts["30d"], a.counts["30d"])
        columns["buyer_losses_30d"] = a.losses["30d"]
    elif kind == "seller":
        counts = a.counts
        columns["amount_vs_seller_avg_30d"] = _ratio(orders.amount, a.amounts["30d"], counts["30d"])
        columns["seller_spike_24h"] = counts["24h"] / np.maximum(1.0, counts["30d"] / 30.0)
        columns["seller_fraud_rate_7d"] = _share(a.fraud_labels["7d"], counts["7d"])
        columns["seller_fraud_rate_30d"] = _share(a.fraud_labels["30d"], counts["30d"])
        columns["seller_loss_rate_30d"] = _share(a.losses["30d"], counts["30d"])
    elif kind == "address":
        columns["address_losses_30d"] = a.losses["30d"]
    return columns


def _ratio(amount: np.ndarray, total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """`features._ratio`: the amount against the window's average order (NaN without one)."""
    out = np.full(len(amount), np.nan)
    ok = (count > 0) & (total > 0)
    out[ok] = amount[ok] / (total[ok] / count[ok])
    return out


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """`features._share`: part over whole, at most 1 (NaN for an empty whole)."""
    out = np.full(len(part), np.nan)
    ok = whole > 0
    out[ok] = np.minimum(part[ok] / whole[ok], 1.0)
    return out

"""Time-bucketed counters per entity: the shape of the Features table, independent of storage.

**One item per entity.** Every entity an order touches (buyer, card, device, ...) is one item,
keyed ``(kind#value, "P")``, holding its profile and every bucket its windows read:

=================  ==========================================  ==============================
attribute          what                                        kept (buckets back)
=================  ==========================================  ==============================
``orders``         lifetime orders                             always
``amount``         lifetime amount (RUB)                       always
``first_seen``     the earliest stored order's time (epoch s)  always
``fraud_labels``   lifetime fraud labels                       always
``losses``         lifetime lost parcels                       always
``list``           allow / block / review, set by ops          always
``c<s>`` ``C<s>``  orders / amount in 5-minute slot *s*        36 (1 h window + 2 h late)
``h<s>`` ``H<s>``  orders / amount in hour slot *s*            26 (24 h window + 2 h late)
``d<s>`` ``D<s>``  orders / amount in UTC day slot *s*         31 (30 d window + a day)
``F<s>`` ``L<s>``  fraud labels / losses reported on day *s*   31
``k<x><m>``        link sketch: linked kind *x*, month *m*     the months of the last 30 d
=================  ==========================================  ==============================

A slot is ``epoch // 300`` (5 minutes), ``// 3600`` (hour) or ``// 86400`` (day), a month is
``year * 12 + month - 1``, all written in base 36 (`b36`): names are short because DynamoDB bills
an item by its attribute names and values. ``<x>`` is one letter per kind (`LINK_CODE`).

An order adds itself to one bucket per level (the ``c``, ``h`` and ``d`` of its time) and to the
lifetime totals: **one UpdateItem per entity**, so an order writes its decision and seven items.
An order at t reads the one item per entity (plus the shards of a hot kind, below) and sums the
buckets each window covers. The windows slide at bucket resolution: "1 h" is the 5-minute
buckets of the last hour including the current one, "24 h" the last 24 hourly buckets, "7 d" /
"30 d" the last 7 / 30 UTC days. Buckets older than every window that reads them (plus the
late-arrival slack, `MAX_ARRIVAL_SKEW`) are removed by the next write to the item
(`stale_attributes`), so an item's size is bounded by its activity in the last 31 days.

**Hot entities are sharded.** A seller is written as `SHARDS` items, ``seller#<id>`` and
``seller#<id>~1`` .. ``~31``; each writer (a function container) sticks to one shard
(`shard_key`), and a read sums all of them (one BatchGetItem still: 32 + 6 keys + the decision).
A top seller's 2,000 orders/s at peak are then about 60 updates/s per item instead of 2,000 on
one (DynamoDB sustains about 1,000 write units/s per item, and each of these costs 3), and an
item carries the idempotency slots of ~1/32 of the containers (see the DynamoDB adapter).

**Distinct links are a bounded sketch.** A card used by many buyers, an address receiving for
many: each entity keeps, per month, the set of its linked entities' 36-bit hashes
(`link_member`), and stops adding once a month holds `LINK_CAP` members (the writer sees the
count in its read). The feature is ``min(distinct over the months of the last 30 days,
LINK_CAP)``: exactly the distinct count below the cap (up to a 36-bit hash collision), the cap
above it, in any arrival order. A set holds at most LINK_CAP members plus the writers racing
on it: about 300 bytes, where exact sets of a pickup point's 100k monthly buyers (3 MB) would
break DynamoDB's 400 KB item limit and fail every order to it.

**Size at the limit.** The busiest item is a top seller's shard: every 5-minute, hourly and
daily bucket populated (36 + 26 + 31 slots, two numbers each), about 190 attributes, ~1.8 KB,
whatever the seller's volume (volume grows the numbers' digits, not their count), plus ~18 bytes
per container writing to it (40 at a 20,000 orders/s peak): ~2.6 KB measured, 3 write units. A
pickup point address adds its link sketches (~600 bytes). Nothing grows with traffic or with the
number of distinct buyers, so no entity can approach 400 KB. If one ever did (a bug), DynamoDB
would refuse that entity's update with a ValidationException: the decision is already stored and
answered, the update fails as invalid input, checkout hands the order to the pending-commits
queue, whose function fails it into its DLQ after its attempts (the order's counting still owed
on the decision, visible and replayable), and no other entity or order is affected: history is
never silently truncated.

Labels (chargebacks, confirmed fraud, lost parcels) count into the same item at the time they
were *reported*: the lifetime totals and the ``F`` / ``L`` daily buckets, so an order sees only
the labels reported before it, in serving and in replay alike.

Storage is generic: a read returns ``{(pk, sk): {attr: value}}`` and a write is a list of
`ContainerUpdate` (atomic ADDs, set-adds and minimums), so DynamoDB and the in-memory
store used for training replay apply exactly the same arithmetic.

**Arrival order.** SQS delivers orders late and out of order, within a batch and across batches.
Every stored value is therefore order-independent: counters and sets only grow, ``first_seen``
is the minimum of the orders' times (not the first stored), a link sketch's value is capped the
same way in any order, and a bucket is removed only once no order within `MAX_ARRIVAL_SKEW` of
the newest can read it. What an order sees is defined *by arrival*: the orders stored before it,
i.e. every earlier batch and the batch-mates placed before it, bucketed by their own
``created_at``. An order that arrives late is invisible to the orders scored before it (they are
not re-scored), and it sees the newer orders already stored wherever their buckets fall in its
windows (its current 5-minute, hourly and daily buckets, the month links, the lifetime totals).
Orders that arrive in time order see exactly the point-in-time view by ``created_at``. The
training replay models both (`dozor_training.fraud.replay`, ``arrival=True``), for arrivals up to
`MAX_ARRIVAL_SKEW` behind the newest order.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from dozor.domain import buckets
from dozor.domain.buckets import FRAUD_PREFIX, LOSS_PREFIX, window_sums
from dozor.domain.clock import DAY, HOUR

Key = tuple[str, str]
Item = Mapping[str, object]
Snapshot = Mapping[Key, Item]

PROFILE = "P"
# Where a bucket's slot is written, and the windows labels count over (`buckets`), named here too.
FIVE_MINUTES = buckets.FIVE_MINUTES
LABEL_WINDOWS = buckets.LABEL_WINDOWS
b36 = buckets.b36

# How far behind the newest stored order an order may arrive and still read all its buckets.
MAX_ARRIVAL_SKEW = 2 * HOUR

# Entity kinds written as several items (see the module docstring): how many.
SHARDS: dict[str, int] = {"seller": 32}
SHARD_MARK = "~"

LINK_CAP = 48
LINK_CODE = {"buyer": "b", "card": "c", "device": "v", "ip": "i", "address": "a", "email": "e", "seller": "s"}

_LINK = "k"  # link sketches' prefix (the buckets' are in `buckets`)
# Buckets kept behind the newest order, per level: the longest window over the level plus the
# late-arrival slack (a day for the daily level: a 2 h late order may still read yesterday).
_KEPT = {
    "5m": HOUR // FIVE_MINUTES + MAX_ARRIVAL_SKEW // FIVE_MINUTES,
    "h": 24 + MAX_ARRIVAL_SKEW // HOUR,
    "d": 31,
}


@lru_cache(maxsize=65536)
def link_member(value: str) -> str:
    """What a link sketch stores for a linked entity: 36 bits of a hash, six characters.

    Remembered: an order links its buyer from four entities (card, device, ip, address)."""
    digest = hashlib.blake2b(value.encode(), digest_size=6).digest()
    return base64.urlsafe_b64encode(digest).decode()[:6]


@dataclass(frozen=True, slots=True)  # slots: a frozen dataclass with them builds twice as fast
class Entity:
    """Something orders share: a buyer, a card, a device... ``value`` is already hashed if personal."""

    kind: str
    value: str

    @property
    def pk(self) -> str:
        return f"{self.kind}#{self.value}"


@lru_cache(maxsize=8192)
def shard_pks(pk: str, kind: str) -> tuple[str, ...]:
    """Every item an entity is stored as: its own key, and its shards' for a sharded kind."""
    shards = SHARDS.get(kind, 1)
    return (pk, *(f"{pk}{SHARD_MARK}{k}" for k in range(1, shards)))


@lru_cache(maxsize=8192)
def _shard_keys(pk: str, kind: str) -> tuple[Key, ...]:
    """`shard_pks` as the items' keys (a seller's 32 are read for every order of the seller)."""
    return tuple((p, PROFILE) for p in shard_pks(pk, kind))


def shard_key(key: Key, writer_shard: int) -> Key:
    """Where a writer on shard ``writer_shard`` stores an update of ``key`` (the entity's own key
    for a kind that is not sharded, or for shard 0)."""
    pk, sk = key
    kind = pk.split("#", 1)[0]
    shards = SHARDS.get(kind, 1)
    if shards == 1 or SHARD_MARK in pk.split("#", 1)[-1]:
        return key
    k = writer_shard % shards
    return (pk, sk) if k == 0 else (f"{pk}{SHARD_MARK}{k}", sk)


@dataclass(slots=True)
class ContainerUpdate:
    """Atomic changes to one item: counters to add to, sets to add to, fields that keep the least
    value ever written (``first_seen``), and the item's expiry (None: it never expires)."""

    key: Key
    add: dict[str, float] = field(default_factory=dict)
    add_to_set: dict[str, set[str]] = field(default_factory=dict)
    set_min: dict[str, float] = field(default_factory=dict)
    expires_at: int | None = None


def keys_for(entities: Iterable[Entity], at: datetime | None = None) -> list[Key]:
    """The items an order reads: one per entity, every shard of a sharded kind."""
    keys: list[Key] = []
    for e in entities:
        if e.kind in SHARDS:
            keys += _shard_keys(e.pk, e.kind)
        else:
            keys.append((e.pk, PROFILE))
    return keys


@dataclass(frozen=True)
class Window:
    name: str
    seconds: int


WINDOWS = (Window("1h", HOUR), Window("24h", DAY), Window("7d", 7 * DAY), Window("30d", 30 * DAY))


# What a label counts as, and the attribute prefixes of its daily buckets and lifetime total.
FRAUD = "fraud"
LOSS = "loss"
_LABEL_PREFIX = {FRAUD: FRAUD_PREFIX, LOSS: LOSS_PREFIX}
_LABEL_TOTAL = {FRAUD: "fraud_labels", LOSS: "losses"}


def _month_index(t: datetime) -> int:
    return t.year * 12 + t.month - 1


@lru_cache(maxsize=4096)
def _link_months(five_minute_slot: int) -> tuple[int, ...]:
    """The months the link windows read: every month touching the last 30 days."""
    t = datetime.fromtimestamp(five_minute_slot * FIVE_MINUTES, tz=UTC)
    # 30 days back can skip a short month (Mar 1 -> Jan 30): include every month in between.
    return tuple(sorted({_month_index(t - timedelta(days=d)) for d in (0, 15, 29)}))


@lru_cache(maxsize=4096)
def _link_names(five_minute_slot: int, kind: str) -> tuple[str, ...]:
    return tuple(_LINK + LINK_CODE[kind] + b36(m) for m in _link_months(five_minute_slot))


class EntityAggregates(NamedTuple):
    """What the windows say about one entity just before an order.

    A named tuple: built seven times per scored order and millions of times per replay, where a
    frozen dataclass's slower construction shows.
    """

    counts: dict[str, float]  # window name -> orders
    amounts: dict[str, float]  # window name -> sum of order amounts (RUB)
    first_seen: float | None  # epoch seconds of the entity's earliest order stored (not the first to arrive)
    lifetime_orders: float
    links: dict[str, int]  # linked entity kind -> distinct values over the months read, at most LINK_CAP
    list_status: str | None  # "allow" | "block" | "review" set by ops
    fraud_labels: dict[str, float]  # window name (7d, 30d) -> orders reported as fraud in it
    losses: dict[str, float]  # window name (7d, 30d) -> parcels reported lost in it
    lifetime_fraud_labels: float
    lifetime_losses: float


def _num(items: list[Item], attr: str) -> float:
    total = 0.0
    for item in items:
        value = item.get(attr)
        if value is not None:
            total += float(value)  # type: ignore[arg-type]
    return total


def summarise(
    entity: Entity,
    at: datetime,
    snapshot: Snapshot,
    link_kinds: tuple[str, ...] = (),
    *,
    epoch: int | None = None,
) -> EntityAggregates:
    """Fold an entity's item (and shards) into per-window totals as seen at ``at``.

    ``link_kinds`` are the linked entity kinds whose distinct counts are wanted. ``epoch``:
    ``at`` in whole epoch seconds, when the caller has it (an order's seven entities share it).
    """
    get = snapshot.get
    pk = entity.pk
    base = get((pk, PROFILE))
    if entity.kind in SHARDS:
        items = list(filter(None, map(get, _shard_keys(pk, entity.kind))))  # in C: 32 keys a seller
    elif base:
        items = [base]
    else:
        items = []
    if not items:
        # Every order and label writes the item, and items never expire: without one the entity
        # has no history at all. Most cards, devices and addresses are seen for the first time,
        # so this is the common case.
        return unseen(link_kinds)
    slot = (int(at.timestamp()) if epoch is None else epoch) // FIVE_MINUTES
    # The hot loop of scoring and replay. Values are floats (the DynamoDB adapter converts
    # numbers on read); absent buckets (and zeros) count for nothing. Shards' sums are added
    # item after item, in their order.
    n1h, n24h, n7d, n30d, a1h, a24h, a7d, a30d, f7d, f30d, l7d, l30d = window_sums(items[0], slot)
    n1h, n24h, n7d, n30d = 0.0 + n1h, 0.0 + n24h, 0.0 + n7d, 0.0 + n30d
    a1h, a24h, a7d, a30d = 0.0 + a1h, 0.0 + a24h, 0.0 + a7d, 0.0 + a30d
    f7d, f30d, l7d, l30d = 0.0 + f7d, 0.0 + f30d, 0.0 + l7d, 0.0 + l30d
    for item in items[1:]:
        s = window_sums(item, slot)
        n1h, n24h, n7d, n30d = n1h + s[0], n24h + s[1], n7d + s[2], n30d + s[3]
        a1h, a24h, a7d, a30d = a1h + s[4], a24h + s[5], a7d + s[6], a30d + s[7]
        f7d, f30d, l7d, l30d = f7d + s[8], f30d + s[9], l7d + s[10], l30d + s[11]
    if len(items) == 1:  # inline: most entities are one item (every kind but the seller)
        one: Mapping[str, Any] = items[0]
        seen = one.get("first_seen")
        first_seen = None if seen is None else float(seen)
        lifetime = float(one.get("orders") or 0.0)
        frauds, losses = float(one.get("fraud_labels") or 0.0), float(one.get("losses") or 0.0)
    else:
        first_seen, lifetime, frauds, losses = _lifetime(items)
    status = base.get("list") if base else None  # ops lists are kept on the entity's own item, not a shard
    return EntityAggregates(
        {"1h": n1h, "24h": n24h, "7d": n7d, "30d": n30d},
        {"1h": a1h, "24h": a24h, "7d": a7d, "30d": a30d},
        first_seen,
        lifetime,
        _links(items, slot, link_kinds) if link_kinds else {},
        str(status) if status else None,
        {"7d": f7d, "30d": f30d},
        {"7d": l7d, "30d": l30d},
        frauds,
        losses,
    )


def _lifetime(items: list[Item]) -> tuple[float | None, float, float, float]:
    """Over an entity's shards: its earliest order stored (epoch seconds), lifetime orders, fraud
    labels and losses."""
    held = [float(v) for item in items if (v := item.get("first_seen")) is not None]  # type: ignore[arg-type]
    return (
        min(held) if held else None,
        _num(items, "orders"),
        _num(items, _LABEL_TOTAL[FRAUD]),
        _num(items, _LABEL_TOTAL[LOSS]),
    )


def _links(items: list[Item], slot: int, link_kinds: tuple[str, ...]) -> dict[str, int]:
    """Per linked kind, the distinct members over the months read, at most LINK_CAP."""
    links: dict[str, int] = {}
    for kind in link_kinds:
        values: set[str] = set()
        for attr in _link_names(slot, kind):
            for item in items:
                members = item.get(attr)
                if members:
                    values.update(members)  # type: ignore[arg-type]
        links[kind] = min(len(values), LINK_CAP)
    return links


_NO_WINDOWS = {w.name: 0.0 for w in WINDOWS}
_NO_LABELS = dict.fromkeys(LABEL_WINDOWS, 0.0)
_UNSEEN: dict[tuple[str, ...], EntityAggregates] = {}


def unseen(link_kinds: tuple[str, ...]) -> EntityAggregates:
    """The aggregates of an entity with no item: one shared instance per link kinds, since most
    entities of an order are new and every reader of `EntityAggregates` only reads it (the
    feature row tells it by identity and writes its zeros at once)."""
    found = _UNSEEN.get(link_kinds)
    if found is None:
        found = _UNSEEN[link_kinds] = EntityAggregates(
            counts=dict(_NO_WINDOWS),
            amounts=dict(_NO_WINDOWS),
            first_seen=None,
            lifetime_orders=0.0,
            links=dict.fromkeys(link_kinds, 0),
            list_status=None,
            fraud_labels=dict(_NO_LABELS),
            losses=dict(_NO_LABELS),
            lifetime_fraud_labels=0.0,
            lifetime_losses=0.0,
        )
    return found


@dataclass(frozen=True)
class _SlotNames:
    """The buckets an order in one 5-minute slot counts into."""

    count_5m: str
    amount_5m: str
    count_hour: str
    amount_hour: str
    count_day: str
    amount_day: str
    day: str
    month: str


@lru_cache(maxsize=4096)
def _slot_names(five_minute_slot: int) -> _SlotNames:
    hour = five_minute_slot // (HOUR // FIVE_MINUTES)
    day = hour // 24
    t = datetime.fromtimestamp(five_minute_slot * FIVE_MINUTES, tz=UTC)
    five, h, d = b36(five_minute_slot), b36(hour), b36(day)
    return _SlotNames("c" + five, "C" + five, "h" + h, "H" + h, "d" + d, "D" + d, d, b36(_month_index(t)))


def updates_for(
    entity: Entity,
    at: datetime,
    amount_rub: float,
    links: Mapping[str, str] | None = None,
    *,
    epoch: int | None = None,
) -> list[ContainerUpdate]:
    """The atomic update that counts one order of ``amount_rub`` at ``at`` (``epoch``: the same
    in whole epoch seconds, when the caller has it) for ``entity``."""
    return order_updates([(entity, links)], amount_rub, int(at.timestamp()) if epoch is None else epoch)


def order_updates(
    entities: Iterable[tuple[Entity, Mapping[str, str] | None]], amount_rub: float, epoch: int
) -> list[ContainerUpdate]:
    """`updates_for` each of an order's entities (with the values it links), in one pass: the
    slot's bucket names are looked up once for all of them (every order scored and replayed)."""
    s = _slot_names(epoch // FIVE_MINUTES)
    c5, a5, ch, ah, cd, ad, month = (
        s.count_5m,
        s.amount_5m,
        s.count_hour,
        s.amount_hour,
        s.count_day,
        s.amount_day,
        s.month,
    )
    result = []
    for entity, links in entities:
        add = {
            "orders": 1,
            "amount": amount_rub,
            c5: 1,
            a5: amount_rub,
            ch: 1,
            ah: amount_rub,
            cd: 1,
            ad: amount_rub,
        }
        linked: dict[str, set[str]] = {}
        if links:
            for kind, value in links.items():
                linked[_LINK + LINK_CODE[kind] + month] = {link_member(value)}
        result.append(ContainerUpdate((entity.pk, PROFILE), add, linked, {"first_seen": epoch}))
    return result


def label_updates_for(entity: Entity, reported_at: datetime, label: str) -> list[ContainerUpdate]:
    """The update that counts one ``label`` (FRAUD or LOSS) reported at ``reported_at`` for ``entity``."""
    slot = int(reported_at.timestamp()) // FIVE_MINUTES
    day = _slot_names(slot).day
    return [
        ContainerUpdate(key=(entity.pk, PROFILE), add={_LABEL_TOTAL[label]: 1, _LABEL_PREFIX[label] + day: 1})
    ]


_PRUNED_PREFIXES = frozenset("cChHdDFL" + _LINK)


@lru_cache(maxsize=4096)
def _oldest_kept(five_minute_slot: int) -> dict[str, int]:
    """Per attribute prefix, the oldest slot (or month) an order in this slot keeps."""
    hour = five_minute_slot // (HOUR // FIVE_MINUTES)
    day = hour // 24
    t = datetime.fromtimestamp(five_minute_slot * FIVE_MINUTES, tz=UTC)
    oldest_month = _month_index(t - timedelta(days=29, seconds=MAX_ARRIVAL_SKEW))
    five, h, d = (five_minute_slot - _KEPT["5m"] + 1, hour - _KEPT["h"] + 1, day - _KEPT["d"] + 1)
    return {"c": five, "C": five, "h": h, "H": h, "d": d, "D": d, "F": d, "L": d, _LINK: oldest_month}


def stale_attributes(item: Item, five_minute_slot: int) -> list[str]:
    """The buckets of ``item`` that no order from this slot on (less the late-arrival slack) reads."""
    oldest = _oldest_kept(five_minute_slot)
    stale = []
    for name in item:
        bucket = _bucket_of(name)
        if bucket is not None and bucket[1] < oldest[bucket[0]]:
            stale.append(name)
    return stale


@lru_cache(maxsize=1 << 16)
def _bucket_of(name: str) -> tuple[str, int] | None:
    """A bucket attribute's prefix and slot (or month); None for the lifetime totals, the list
    status and the store's own bookkeeping. Remembered: every write and every eviction of the
    replay's store reads each name of the item again, and the names are few (a month of slots)."""
    prefix = name[:1]
    if prefix not in _PRUNED_PREFIXES:
        return None
    try:
        return prefix, int(name[2:] if prefix == _LINK else name[1:], 36)
    except ValueError:
        return None


def fitted_to_stored(updates: Iterable[ContainerUpdate], snapshot: Snapshot) -> list[ContainerUpdate]:
    """``updates`` fitted to what a read showed of the items they change.

    - a minimum the read already shows at or below the new value (on the item, or on any shard
      of a sharded entity: a read takes the least) is dropped: a minimum only ever goes down, so
      the store holds no more than the read (the DynamoDB adapter writes a minimum with a
      condition). Almost every order of a known entity comes later than its first;
    - a link member the read shows, or one for a month already holding LINK_CAP members, is
      dropped: it would change nothing any reader sees, and this is what bounds a sketch.
    """
    result = []
    get = snapshot.get
    for update in updates:
        key = update.key
        item = get(key)
        pk, sk = key
        kind = pk.partition("#")[0]
        set_min = {}
        if kind in SHARDS:
            shards = _shard_keys(pk, kind) if sk == PROFILE else [(p, sk) for p in shard_pks(pk, kind)]
            readable = list(filter(None, map(get, shards)))
            if item is None and not readable:
                result.append(update)
                continue
            for attr, value in update.set_min.items():
                held = [float(h) for i in readable if (h := i.get(attr)) is not None]  # type: ignore[arg-type]
                if not held or value < min(held):
                    set_min[attr] = value
        elif item is None:
            result.append(update)
            continue
        else:
            for attr, value in update.set_min.items():
                one = item.get(attr)
                if one is None or value < float(one):  # type: ignore[arg-type]
                    set_min[attr] = value
        add_to_set = {}
        for attr, members in update.add_to_set.items():
            held_set = (item or {}).get(attr) or set()
            if len(held_set) < LINK_CAP:  # type: ignore[arg-type]
                fresh = members - held_set  # type: ignore[operator]
                if fresh:
                    add_to_set[attr] = fresh
        # Built directly: `dataclasses.replace` costs several times more, seven times an order.
        result.append(ContainerUpdate(key, update.add, add_to_set, set_min, update.expires_at))
    return result


# The name the scoring service calls it by (it was only about minimums once).
settled_minimums_dropped = fitted_to_stored


def prune(item: dict[str, object], five_minute_slot: int) -> None:
    """Drop an in-memory item's stale buckets (the replay's store, which no write prunes)."""
    for name in stale_attributes(item, five_minute_slot):
        del item[name]


def apply_updates(items: dict[Key, dict[str, object]], updates: Iterable[ContainerUpdate]) -> None:
    """Apply updates to plain dicts as the DynamoDB adapter does (ADD, set ADD, conditional minimum)."""
    for update in updates:
        item = items.get(update.key)
        if item is None:
            item = items[update.key] = {}
        get = item.get
        for attr, delta in update.add.items():
            item[attr] = get(attr, 0.0) + delta  # type: ignore[operator]
        for attr, values in update.add_to_set.items():
            # A fresh set each time: a snapshot handed out earlier must not change under a reader.
            current = get(attr)
            item[attr] = current | values if isinstance(current, set | frozenset) else set(values)
        for attr, value in update.set_min.items():
            held = get(attr)
            if held is None or value < held:  # type: ignore[operator]
                item[attr] = value
        if update.expires_at is not None:
            item["expires_at"] = update.expires_at

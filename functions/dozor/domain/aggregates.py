"""Time-bucketed counters per entity: the shape of the Features table, independent of storage.

Every entity an order touches (buyer, card, device, ...) owns a few small *containers*, each an
item keyed by (pk, sk):

- ``P``               profile: first seen, lifetime totals, list membership (allow/block/review)
- ``H#YYYYMMDDHH``    twelve 5-minute buckets of one hour      → the 1 h window
- ``D#YYYYMMDD``      twenty-four hourly buckets of one day      → the 24 h window
- ``M#YYYYMM``        daily buckets of one month, plus sets of linked entities → 7 d / 30 d windows

Labels (chargebacks, confirmed fraud, lost parcels) count into the same containers at the time they
were *reported*: the profile keeps lifetime totals and the month containers daily buckets, so an
order sees only the labels reported before it, in serving and in replay alike.

An order at time t reads a fixed handful of containers per entity (the current and previous hour,
today and yesterday, the months covering the last 30 days) and adds itself to one bucket of each
level. The windows are sliding at bucket resolution: "1 h" is the 5-minute buckets of the last
hour including the current one, "24 h" the last 24 hourly buckets, "7 d"/"30 d" the last 7/30 days.

Storage is generic: a read returns ``{(pk, sk): {attr: value}}`` and a write is a list of
`ContainerUpdate` (atomic ADDs, set-adds and minimums), so DynamoDB and the in-memory store
used for training replay apply exactly the same arithmetic.

**Arrival order.** SQS delivers orders late and out of order, within a batch and across batches.
Every stored value is therefore order-independent: counters and sets only grow, ``first_seen`` is
the minimum of the orders' times (not the first stored), and a container's ``expires_at`` depends
on the container alone, so the containers after a set of orders are the same in any arrival order.
What an order sees is defined *by arrival*: the orders stored before it, i.e. every earlier batch
and the batch-mates placed before it, bucketed by their own ``created_at``. An order that arrives
late is invisible to the orders scored before it (they are not re-scored), and it sees the newer
orders already stored wherever their buckets fall in its windows (its current 5-minute, hourly
and daily buckets, the month links, the lifetime totals). Orders that arrive in time order see
exactly the point-in-time view by ``created_at``. The training replay models both
(`dozor_training.fraud.replay`, ``arrival=True``), for arrivals up to the hour containers'
late-event slack behind the newest order (`late_event_slack`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from dozor.domain.clock import DAY, HOUR

Key = tuple[str, str]
Item = Mapping[str, object]
Snapshot = Mapping[Key, Item]

PROFILE = "P"
FIVE_MINUTES = 300

# How long a container outlives the last window that reads it, for clock skew and late events.
_TTL_SLACK = {"H": 2 * HOUR, "D": 2 * DAY, "M": 35 * DAY}


def late_event_slack(level: str) -> int:
    """How long a container of a level (``"H"``, ``"D"``, ``"M"``) outlives its last window."""
    return _TTL_SLACK[level]


def last_read_before(sk: str, expires_at: float) -> float:
    """When the last window over a container has passed: its TTL without the slack for late events.

    A replay in time order has no late events, so it may forget a container from then on.
    """
    return expires_at - _TTL_SLACK.get(sk[:1], 0)


@dataclass(frozen=True)
class Entity:
    """Something orders share: a buyer, a card, a device... ``value`` is already hashed if personal."""

    kind: str
    value: str

    @property
    def pk(self) -> str:
        return f"{self.kind}#{self.value}"


@dataclass(slots=True)
class ContainerUpdate:
    """Atomic changes to one container: counters to add to, sets to add to, fields that keep the
    least value ever written (``first_seen``), and the container's expiry (the same for every
    update of that container)."""

    key: Key
    add: dict[str, float] = field(default_factory=dict)
    add_to_set: dict[str, set[str]] = field(default_factory=dict)
    set_min: dict[str, float] = field(default_factory=dict)
    expires_at: int | None = None


def _hour_sk(ts: datetime) -> str:
    return ts.strftime("H#%Y%m%d%H")


def _day_sk(ts: datetime) -> str:
    return ts.strftime("D#%Y%m%d")


def _month_sk(ts: datetime) -> str:
    return ts.strftime("M#%Y%m")


def container_sks(at: datetime) -> tuple[str, ...]:
    """The sort keys an order at ``at`` reads for every entity (profile first)."""
    return _container_sks(int(at.timestamp()) // FIVE_MINUTES)


@lru_cache(maxsize=4096)
def _container_sks(five_minute_slot: int) -> tuple[str, ...]:
    t = datetime.fromtimestamp(five_minute_slot * FIVE_MINUTES, tz=UTC)
    months = {_month_sk(t - timedelta(days=d)) for d in (0, 29)}
    # 30 days back can skip a short month (Mar 1 -> Jan 30): include every month in between.
    months.add(_month_sk(t - timedelta(days=15)))
    return (
        PROFILE,
        _hour_sk(t),
        _hour_sk(t - timedelta(hours=1)),
        _day_sk(t),
        _day_sk(t - timedelta(days=1)),
        *sorted(months),
    )


def keys_for(entities: Iterable[Entity], at: datetime) -> list[Key]:
    sks = container_sks(at)
    return [(e.pk, sk) for e in entities for sk in sks]


@dataclass(frozen=True)
class Window:
    name: str
    seconds: int


WINDOWS = (Window("1h", HOUR), Window("24h", DAY), Window("7d", 7 * DAY), Window("30d", 30 * DAY))


# What a label counts as, and the attribute prefixes of its daily buckets and lifetime total.
FRAUD = "fraud"
LOSS = "loss"
_LABEL_PREFIX = {FRAUD: "f", LOSS: "l"}
_LABEL_TOTAL = {FRAUD: "fraud_labels", LOSS: "losses"}
LABEL_WINDOWS = ("7d", "30d")

# One container's share of a window: (container sk, count attributes, amount attributes,
# fraud-label attributes, loss attributes). Labels live only in the daily buckets.
BucketGroup = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def _window_buckets(five_minute_slot: int) -> tuple[tuple[str, tuple[BucketGroup, ...]], ...]:
    """The buckets each window covers for an order in the given 5-minute slot (epoch // 300).

    Grouped by container so each container is looked up once per window. Each window is cached
    at the resolution it moves at (the 1 h window every 5 minutes, the 24 h window every hour,
    the 7 d / 30 d windows every day): a replay meets a new 5-minute slot every few orders.
    """
    hour_slot = five_minute_slot // (HOUR // FIVE_MINUTES)
    day_slot = hour_slot // 24
    return (
        _window_in_slots(WINDOWS[0], five_minute_slot),
        _window_in_slots(WINDOWS[1], hour_slot),
        _window_in_slots(WINDOWS[2], day_slot),
        _window_in_slots(WINDOWS[3], day_slot),
    )


@lru_cache(maxsize=8192)
def _window_in_slots(window: Window, slot: int) -> tuple[str, tuple[BucketGroup, ...]]:
    """One window's buckets; ``slot`` counts the window's own bucket size (5 min, hour or day)."""
    refs: dict[str, list[str]] = {}
    if window.seconds <= HOUR:
        t = datetime.fromtimestamp(slot * FIVE_MINUTES, tz=UTC)
        for i in range(window.seconds // FIVE_MINUTES):
            b = t - timedelta(seconds=i * FIVE_MINUTES)
            refs.setdefault(_hour_sk(b), []).append(f"{b.minute // 5:02d}")
    elif window.seconds <= DAY:
        t = datetime.fromtimestamp(slot * HOUR, tz=UTC)
        for i in range(window.seconds // HOUR):
            b = t - timedelta(hours=i)
            refs.setdefault(_day_sk(b), []).append(f"{b.hour:02d}")
    else:
        t = datetime.fromtimestamp(slot * DAY, tz=UTC)
        for i in range(window.seconds // DAY):
            b = t - timedelta(days=i)
            refs.setdefault(_month_sk(b), []).append(f"{b.day:02d}")
    daily = window.name in LABEL_WINDOWS
    groups = tuple(
        (
            sk,
            tuple("n" + x for x in suffixes),
            tuple("a" + x for x in suffixes),
            tuple("f" + x for x in suffixes) if daily else (),
            tuple("l" + x for x in suffixes) if daily else (),
        )
        for sk, suffixes in refs.items()
    )
    return window.name, groups


@lru_cache(maxsize=4096)
def _link_months(five_minute_slot: int) -> tuple[str, ...]:
    t = datetime.fromtimestamp(five_minute_slot * FIVE_MINUTES, tz=UTC)
    return tuple(sorted({_month_sk(t - timedelta(days=d)) for d in (0, 15, 29)}))


class EntityAggregates(NamedTuple):
    """What the windows say about one entity just before an order.

    A named tuple: built seven times per scored order and millions of times per replay, where a
    frozen dataclass's slower construction shows.
    """

    counts: dict[str, float]  # window name -> orders
    amounts: dict[str, float]  # window name -> sum of order amounts (RUB)
    first_seen: float | None  # epoch seconds of the entity's earliest order stored (not the first to arrive)
    lifetime_orders: float
    links: dict[str, int]  # linked entity kind -> distinct values over the months read
    list_status: str | None  # "allow" | "block" | "review" set by ops
    fraud_labels: dict[str, float]  # window name (7d, 30d) -> orders reported as fraud in it
    losses: dict[str, float]  # window name (7d, 30d) -> parcels reported lost in it
    lifetime_fraud_labels: float
    lifetime_losses: float


def _num(item: Item | None, attr: str) -> float:
    if item is None:
        return 0.0
    value = item.get(attr)
    return float(value) if value is not None else 0.0  # type: ignore[arg-type]


def summarise(
    entity: Entity, at: datetime, snapshot: Snapshot, link_kinds: tuple[str, ...] = ()
) -> EntityAggregates:
    """Fold an entity's containers into per-window totals as seen at ``at``.

    ``link_kinds`` are the linked entity kinds whose distinct counts are wanted.
    """
    pk = entity.pk
    profile = snapshot.get((pk, PROFILE))
    if profile is None:
        # Every order and label writes the profile, and profiles never expire: without one the
        # entity has no history at all. Most cards, devices and addresses are seen for the first
        # time, so this is the common case.
        return _unseen(link_kinds)
    slot = int(at.timestamp()) // FIVE_MINUTES
    counts: dict[str, float] = {}
    amounts: dict[str, float] = {}
    fraud_labels: dict[str, float] = {}
    losses: dict[str, float] = {}
    # The hot loop of scoring and replay, so the sums stay in C (filter/sum). Values are floats
    # (the DynamoDB adapter converts numbers on read); absent buckets (and zeros) drop out.
    for window_name, groups in _window_buckets(slot):
        n = a = f = lost = 0.0
        for sk, n_attrs, a_attrs, f_attrs, l_attrs in groups:
            item = snapshot.get((pk, sk))
            if item:
                get = item.get
                n += sum(filter(None, map(get, n_attrs)))  # type: ignore[arg-type]
                a += sum(filter(None, map(get, a_attrs)))  # type: ignore[arg-type]
                if f_attrs:
                    f += sum(filter(None, map(get, f_attrs)))  # type: ignore[arg-type]
                    lost += sum(filter(None, map(get, l_attrs)))  # type: ignore[arg-type]
        counts[window_name] = n
        amounts[window_name] = a
        if f_attrs:
            fraud_labels[window_name] = f
            losses[window_name] = lost
    first_seen = profile.get("first_seen")
    links: dict[str, int] = {}
    if link_kinds:
        months = [item for sk in _link_months(slot) if (item := snapshot.get((pk, sk)))]
        for kind in link_kinds:
            attr = "lk_" + kind
            values: set[str] = set()
            for item in months:
                members = item.get(attr)
                if members:
                    values.update(members)  # type: ignore[arg-type]
            links[kind] = len(values)
    status = profile.get("list")
    return EntityAggregates(
        counts=counts,
        amounts=amounts,
        first_seen=float(first_seen) if first_seen is not None else None,  # type: ignore[arg-type]
        lifetime_orders=_num(profile, "orders"),
        links=links,
        list_status=str(status) if status else None,
        fraud_labels=fraud_labels,
        losses=losses,
        lifetime_fraud_labels=_num(profile, _LABEL_TOTAL[FRAUD]),
        lifetime_losses=_num(profile, _LABEL_TOTAL[LOSS]),
    )


_NO_WINDOWS = {w.name: 0.0 for w in WINDOWS}
_NO_LABELS = dict.fromkeys(LABEL_WINDOWS, 0.0)


def _unseen(link_kinds: tuple[str, ...]) -> EntityAggregates:
    return EntityAggregates(
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


@dataclass(frozen=True)
class _SlotLayout:
    """Where an order in one 5-minute slot is counted, and until when each container lives."""

    epoch: int
    hour_sk: str
    day_sk: str
    month_sk: str
    five: str
    hour: str
    day: str
    hour_expires: int
    day_expires: int
    month_expires: int


@lru_cache(maxsize=4096)
def _slot_layout(five_minute_slot: int) -> _SlotLayout:
    t = datetime.fromtimestamp(five_minute_slot * FIVE_MINUTES, tz=UTC)
    hour_end = int(t.replace(minute=0).timestamp()) + HOUR
    day_end = int(t.replace(hour=0, minute=0).timestamp()) + DAY
    month_start = t.replace(day=1, hour=0, minute=0)
    month_end = int((month_start + timedelta(days=32)).replace(day=1).timestamp())
    return _SlotLayout(
        epoch=five_minute_slot * FIVE_MINUTES,
        hour_sk=_hour_sk(t),
        day_sk=_day_sk(t),
        month_sk=_month_sk(t),
        five=f"{t.minute // 5:02d}",
        hour=f"{t.hour:02d}",
        day=f"{t.day:02d}",
        # A container is read until its last bucket leaves the longest window over it. The expiry
        # depends on the container only, never on which of its orders was stored last.
        hour_expires=hour_end + HOUR + _TTL_SLACK["H"],
        day_expires=day_end + DAY + _TTL_SLACK["D"],
        month_expires=month_end + 30 * DAY + _TTL_SLACK["M"],
    )


def updates_for(
    entity: Entity, at: datetime, amount_rub: float, links: Mapping[str, str] | None = None
) -> list[ContainerUpdate]:
    """The atomic updates that count one order of ``amount_rub`` at ``at`` for ``entity``."""
    epoch = int(at.timestamp())
    s = _slot_layout(epoch // FIVE_MINUTES)
    pk = entity.pk
    return [
        ContainerUpdate(
            key=(pk, PROFILE), add={"orders": 1, "amount": amount_rub}, set_min={"first_seen": epoch}
        ),
        ContainerUpdate(
            key=(pk, s.hour_sk), add={"n" + s.five: 1, "a" + s.five: amount_rub}, expires_at=s.hour_expires
        ),
        ContainerUpdate(
            key=(pk, s.day_sk), add={"n" + s.hour: 1, "a" + s.hour: amount_rub}, expires_at=s.day_expires
        ),
        ContainerUpdate(
            key=(pk, s.month_sk),
            add={"n" + s.day: 1, "a" + s.day: amount_rub},
            add_to_set={"lk_" + kind: {value} for kind, value in (links or {}).items()},
            expires_at=s.month_expires,
        ),
    ]


def label_updates_for(entity: Entity, reported_at: datetime, label: str) -> list[ContainerUpdate]:
    """The updates that count one ``label`` (FRAUD or LOSS) reported at ``reported_at`` for ``entity``."""
    s = _slot_layout(int(reported_at.timestamp()) // FIVE_MINUTES)
    return [
        ContainerUpdate(key=(entity.pk, PROFILE), add={_LABEL_TOTAL[label]: 1}),
        ContainerUpdate(
            key=(entity.pk, s.month_sk), add={_LABEL_PREFIX[label] + s.day: 1}, expires_at=s.month_expires
        ),
    ]


def settled_minimums_dropped(updates: Iterable[ContainerUpdate], snapshot: Snapshot) -> list[ContainerUpdate]:
    """``updates`` without the minimums a read already shows at or below the new value.

    A minimum only ever goes down, so a value the snapshot holds bounds what the store holds now:
    the store need not be asked (the DynamoDB adapter writes a minimum with a condition). Almost
    every order of a known entity comes later than its first, so this leaves plain ADDs.
    """
    result = []
    for update in updates:
        item = snapshot.get(update.key)
        if update.set_min and item is not None:
            kept = {
                attr: value
                for attr, value in update.set_min.items()
                if (held := item.get(attr)) is None or value < held  # type: ignore[operator]
            }
            if kept != update.set_min:
                result.append(
                    ContainerUpdate(update.key, update.add, update.add_to_set, kept, update.expires_at)
                )
                continue
        result.append(update)
    return result


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

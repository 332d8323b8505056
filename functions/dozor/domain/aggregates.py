"""Time-bucketed counters per entity: the shape of the Features table, independent of storage.

Every entity an order touches (buyer, card, device, ...) owns a few small *containers*, each an
item keyed by (pk, sk):

- ``P``               profile: first seen, lifetime totals, list membership (allow/block/review)
- ``H#YYYYMMDDHH``    twelve 5-minute buckets of one hour      → the 1 h window
- ``D#YYYYMMDD``      twenty-four hourly buckets of one day      → the 24 h window
- ``M#YYYYMM``        daily buckets of one month, plus sets of linked entities → 7 d / 30 d windows

An order at time t reads a fixed handful of containers per entity (the current and previous hour,
today and yesterday, the months covering the last 30 days) and adds itself to one bucket of each
level. The windows are sliding at bucket resolution: "1 h" is the 5-minute buckets of the last
hour including the current one, "24 h" the last 24 hourly buckets, "7 d"/"30 d" the last 7/30 days.

Storage is generic: a read returns ``{(pk, sk): {attr: value}}`` and a write is a list of
`ContainerUpdate` (atomic ADDs, set-adds and set-if-absent), so DynamoDB and the in-memory store
used for training replay apply exactly the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol

Key = tuple[str, str]
Item = Mapping[str, object]
Snapshot = Mapping[Key, Item]

PROFILE = "P"
FIVE_MINUTES = 300
HOUR = 3600
DAY = 86400

# How long a container outlives the last window that reads it, for clock skew and late events.
_TTL_SLACK = {"H": 2 * HOUR, "D": 2 * DAY, "M": 35 * DAY}


@dataclass(frozen=True)
class Entity:
    """Something orders share: a buyer, a card, a device... ``value`` is already hashed if personal."""

    kind: str
    value: str

    @property
    def pk(self) -> str:
        return f"{self.kind}#{self.value}"


@dataclass
class ContainerUpdate:
    """Atomic changes to one container: counters to add to, sets to add to, fields set once."""

    key: Key
    add: dict[str, float] = field(default_factory=dict)
    add_to_set: dict[str, set[str]] = field(default_factory=dict)
    set_if_absent: dict[str, float] = field(default_factory=dict)
    expires_at: int | None = None


class AggregateReader(Protocol):
    """Reads containers; missing ones are simply absent from the result."""

    def read(self, keys: Iterable[Key]) -> dict[Key, dict[str, object]]: ...


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


# One container's share of a window: (container sk, count attributes, amount attributes).
BucketGroup = tuple[str, tuple[str, ...], tuple[str, ...]]


@lru_cache(maxsize=4096)
def _window_buckets(five_minute_slot: int) -> tuple[tuple[str, tuple[BucketGroup, ...]], ...]:
    """The buckets each window covers for an order in the given 5-minute slot (epoch // 300).

    Grouped by container so each container is looked up once per window. Cached: in a replay or
    a busy minute, thousands of orders share a slot.
    """
    t = datetime.fromtimestamp(five_minute_slot * FIVE_MINUTES, tz=UTC)
    result = []
    for window in WINDOWS:
        refs: dict[str, list[str]] = {}
        if window.seconds <= HOUR:
            for i in range(window.seconds // FIVE_MINUTES):
                b = t - timedelta(seconds=i * FIVE_MINUTES)
                refs.setdefault(_hour_sk(b), []).append(f"{b.minute // 5:02d}")
        elif window.seconds <= DAY:
            for i in range(window.seconds // HOUR):
                b = t - timedelta(hours=i)
                refs.setdefault(_day_sk(b), []).append(f"{b.hour:02d}")
        else:
            for i in range(window.seconds // DAY):
                b = t - timedelta(days=i)
                refs.setdefault(_month_sk(b), []).append(f"{b.day:02d}")
        groups = tuple(
            (sk, tuple("n" + x for x in suffixes), tuple("a" + x for x in suffixes))
            for sk, suffixes in refs.items()
        )
        result.append((window.name, groups))
    return tuple(result)


@lru_cache(maxsize=4096)
def _link_months(five_minute_slot: int) -> tuple[str, ...]:
    t = datetime.fromtimestamp(five_minute_slot * FIVE_MINUTES, tz=UTC)
    return tuple(sorted({_month_sk(t - timedelta(days=d)) for d in (0, 15, 29)}))


@dataclass(frozen=True)
class EntityAggregates:
    """What the windows say about one entity just before an order."""

    counts: dict[str, float]  # window name -> orders
    amounts: dict[str, float]  # window name -> sum of order amounts (RUB)
    first_seen: float | None  # epoch seconds
    lifetime_orders: float
    links: dict[str, int]  # linked entity kind -> distinct values over the months read
    list_status: str | None  # "allow" | "block" | "review" set by ops


def _num(item: Item | None, attr: str) -> float:
    if item is None:
        return 0.0
    value = item.get(attr)
    return float(value) if value is not None else 0.0  # type: ignore[arg-type]


def summarise(entity: Entity, at: datetime, snapshot: Snapshot) -> EntityAggregates:
    """Fold an entity's containers into per-window totals as seen at ``at``."""
    slot = int(at.timestamp()) // FIVE_MINUTES
    pk = entity.pk
    counts: dict[str, float] = {}
    amounts: dict[str, float] = {}
    for window_name, groups in _window_buckets(slot):
        n = a = 0.0
        for sk, n_attrs, a_attrs in groups:
            item = snapshot.get((pk, sk))
            if item:
                n += sum(_num(item, attr) for attr in n_attrs)
                a += sum(_num(item, attr) for attr in a_attrs)
        counts[window_name] = n
        amounts[window_name] = a
    profile = snapshot.get((pk, PROFILE))
    first_seen = profile.get("first_seen") if profile else None
    links: dict[str, set[str]] = {}
    for sk in _link_months(slot):
        item = snapshot.get((pk, sk))
        if not item:
            continue
        for attr, value in item.items():
            if attr.startswith("lk_") and isinstance(value, set | frozenset | list):
                links.setdefault(attr[3:], set()).update(str(v) for v in value)
    status = profile.get("list") if profile else None
    return EntityAggregates(
        counts=counts,
        amounts=amounts,
        first_seen=float(first_seen) if first_seen is not None else None,  # type: ignore[arg-type]
        lifetime_orders=_num(profile, "orders"),
        links={kind: len(values) for kind, values in links.items()},
        list_status=str(status) if status else None,
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
    return _SlotLayout(
        epoch=five_minute_slot * FIVE_MINUTES,
        hour_sk=_hour_sk(t),
        day_sk=_day_sk(t),
        month_sk=_month_sk(t),
        five=f"{t.minute // 5:02d}",
        hour=f"{t.hour:02d}",
        day=f"{t.day:02d}",
        # A container is read until its last bucket leaves the longest window over it.
        hour_expires=hour_end + HOUR + _TTL_SLACK["H"],
        day_expires=day_end + DAY + _TTL_SLACK["D"],
        month_expires=day_end + 31 * DAY + 30 * DAY + _TTL_SLACK["M"],
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
            key=(pk, PROFILE), add={"orders": 1, "amount": amount_rub}, set_if_absent={"first_seen": epoch}
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


def apply_updates(items: dict[Key, dict[str, object]], updates: Iterable[ContainerUpdate]) -> None:
    """Apply updates to plain dicts with DynamoDB's ADD / if_not_exists semantics."""
    for update in updates:
        item = items.setdefault(update.key, {})
        for attr, delta in update.add.items():
            item[attr] = float(item.get(attr, 0.0)) + delta  # type: ignore[arg-type]
        for attr, values in update.add_to_set.items():
            current = item.get(attr)
            item[attr] = (set(current) if isinstance(current, set | frozenset) else set()) | values
        for attr, value in update.set_if_absent.items():
            item.setdefault(attr, value)
        if update.expires_at is not None:
            item["expires_at"] = update.expires_at


class InMemoryAggregates:
    """The feature store for training replay and tests: same reads and updates, in a dict."""

    def __init__(self) -> None:
        self.items: dict[Key, dict[str, object]] = {}

    def read(self, keys: Iterable[Key]) -> dict[Key, dict[str, object]]:
        return {k: self.items[k] for k in keys if k in self.items}

    def apply(self, updates: Iterable[ContainerUpdate]) -> None:
        apply_updates(self.items, updates)

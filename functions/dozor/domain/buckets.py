"""The time buckets of a Features item and their sums over the windows (`dozor.domain.aggregates`).

A bucket is an attribute named by a prefix and a slot number in base 36 (`b36`): ``c`` / ``C``
orders and amount in a 5-minute slot, ``h`` / ``H`` in an hour, ``d`` / ``D`` in a UTC day,
``F`` / ``L`` fraud labels and losses reported on a day. An order reads the last 12 five-minute
buckets (1 h), 24 hourly (24 h), 7 and 30 daily (7 d, 30 d), its own slot's included.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from dozor.domain.clock import HOUR

Item = Mapping[str, object]

FIVE_MINUTES = 300
# Attribute prefixes: (count, amount) per level; label buckets per day.
_COUNT = {"5m": "c", "h": "h", "d": "d"}
_AMOUNT = {"5m": "C", "h": "H", "d": "D"}
FRAUD_PREFIX = "F"
LOSS_PREFIX = "L"
LABEL_WINDOWS = ("7d", "30d")  # the windows labels are counted over

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


@lru_cache(maxsize=65536)
def b36(n: int) -> str:
    """A slot or month number in base 36 (attribute names are billed by the byte)."""
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_DIGITS[r])
    return "".join(reversed(out))


# One window's attribute names: (window, counts, amounts, fraud labels, losses).
WindowNames = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def _window_names(five_minute_slot: int) -> tuple[WindowNames, ...]:
    """The bucket names each window covers for an order in the given 5-minute slot.

    Each window is cached at the resolution it moves at (the 1 h window every 5 minutes, the
    24 h window every hour, the 7 d / 30 d windows every day): a replay meets a new 5-minute
    slot every few orders.
    """
    hour_slot = five_minute_slot // (HOUR // FIVE_MINUTES)
    day_slot = hour_slot // 24
    return (
        _names_back("1h", "5m", five_minute_slot, HOUR // FIVE_MINUTES),
        _names_back("24h", "h", hour_slot, 24),
        _names_back("7d", "d", day_slot, 7),
        _names_back("30d", "d", day_slot, 30),
    )


@lru_cache(maxsize=8192)
def _names_back(window: str, level: str, slot: int, buckets: int) -> WindowNames:
    slots = [b36(slot - i) for i in range(buckets)]
    labelled = window in LABEL_WINDOWS
    return (
        window,
        tuple(_COUNT[level] + s for s in slots),
        tuple(_AMOUNT[level] + s for s in slots),
        tuple(FRAUD_PREFIX + s for s in slots) if labelled else (),
        tuple(LOSS_PREFIX + s for s in slots) if labelled else (),
    )


# Bucket codes of `_bucket_index`: what a bucket attribute counts into.
_N_1H, _N_24H, _N_DAY, _F_DAY, _L_DAY, _A_1H, _A_24H, _A_DAY = range(8)
# Above this many attributes an item is read window by window instead of walked once: only an
# item no write prunes (a test's or a benchmark's store) gets there; a stored one stays under ~190.
_WALKED = 96


@lru_cache(maxsize=4096)
def _bucket_index(five_minute_slot: int) -> dict[str, tuple[int, int]]:
    """Every bucket a window of an order in this slot reads: name -> (code, age in buckets).

    Walking an item once against this costs one lookup per attribute the item holds (a dozen for
    most entities), where reading each window's names costs ~220 lookups, nearly all misses.
    """
    one_hour, one_day, _week, month = _window_names(five_minute_slot)
    index: dict[str, tuple[int, int]] = {}
    for names, code in (
        (one_hour[1], _N_1H),
        (one_hour[2], _A_1H),
        (one_day[1], _N_24H),
        (one_day[2], _A_24H),
        (month[1], _N_DAY),
        (month[2], _A_DAY),
        (month[3], _F_DAY),
        (month[4], _L_DAY),
    ):
        for age, name in enumerate(names):
            index[name] = (code, age)
    return index


# An item's window sums: counts 1h, 24h, 7d, 30d; amounts 1h, 24h, 7d, 30d; fraud labels 7d, 30d;
# losses 7d, 30d.
WindowSums = tuple[float, float, float, float, float, float, float, float, float, float, float, float]


def _walked(item: Item, index: dict[str, tuple[int, int]]) -> WindowSums:
    """One item's window sums from one pass over its attributes.

    Counts are whole numbers, exact in any order. Amounts are added newest bucket first, each
    window from zero, as `_looked_up` adds them (and the columnar replay): the same bits.
    """
    n1h = n24h = n7d = n30d = f7d = f30d = l7d = l30d = 0.0
    a1h: list[float | None] | None = None
    a24h: list[float | None] | None = None
    aday: list[float | None] | None = None
    look = index.get
    # The codes as literals, not the module's names: a global lookup per branch is most of the loop.
    entries: Iterable[tuple[str, Any]] = item.items()  # stored numbers are floats
    for name, value in entries:
        hit = look(name)
        if hit is None or not value:
            continue
        code, age = hit
        if code == 2:  # _N_DAY
            n30d += value
            if age < 7:
                n7d += value
        elif code == 7:  # _A_DAY
            if aday is None:
                aday = [None] * 30
            aday[age] = value
        elif code == 1:  # _N_24H
            n24h += value
        elif code == 6:  # _A_24H
            if a24h is None:
                a24h = [None] * 24
            a24h[age] = value
        elif code == 0:  # _N_1H
            n1h += value
        elif code == 5:  # _A_1H
            if a1h is None:
                a1h = [None] * 12
            a1h[age] = value
        elif code == 3:  # _F_DAY
            f30d += value
            if age < 7:
                f7d += value
        else:
            l30d += value
            if age < 7:
                l7d += value
    return (
        n1h,
        n24h,
        n7d,
        n30d,
        sum(filter(None, a1h)) if a1h else 0.0,
        sum(filter(None, a24h)) if a24h else 0.0,
        sum(filter(None, aday[:7])) if aday else 0.0,
        sum(filter(None, aday)) if aday else 0.0,
        f7d,
        f30d,
        l7d,
        l30d,
    )


def _looked_up(item: Item, five_minute_slot: int) -> WindowSums:
    """One item's window sums from a lookup of every bucket each window reads (newest first)."""
    get = item.get
    sums: list[float] = []
    labels: list[float] = []
    for _window, n_attrs, a_attrs, f_attrs, l_attrs in _window_names(five_minute_slot):
        sums.append(sum(filter(None, map(get, n_attrs))))  # type: ignore[arg-type]
        sums.append(sum(filter(None, map(get, a_attrs))))  # type: ignore[arg-type]
        if f_attrs:
            labels.append(sum(filter(None, map(get, f_attrs))))  # type: ignore[arg-type]
            labels.append(sum(filter(None, map(get, l_attrs))))  # type: ignore[arg-type]
    n1h, a1h, n24h, a24h, n7d, a7d, n30d, a30d = sums
    f7d, l7d, f30d, l30d = labels
    return (n1h, n24h, n7d, n30d, a1h, a24h, a7d, a30d, f7d, f30d, l7d, l30d)


def window_sums(item: Item, five_minute_slot: int) -> WindowSums:
    """One item's sums over the windows of an order in this 5-minute slot (see `WindowSums`)."""
    if len(item) > _WALKED:
        return _looked_up(item, five_minute_slot)
    return _walked(item, _bucket_index(five_minute_slot))

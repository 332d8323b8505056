"""Distinct linked entities over the month containers an order reads, for a whole entity kind at once.

Serving keeps, in each entity's month container, the set of linked values (the buyers of a card,
the cards of a buyer, ...) its orders of that month named, and an order counts the distinct
values in the union of the sets of the months its 30-day window touches (`aggregates._link_months`:
the months of the order's day and of 29 days earlier, and every month in between). The set
of an order is made of the orders stored before it (the arrival sequence ``seq``), bucketed by
their own month, so one formula covers time order and arrival order alike.

The sets are bounded sketches (`aggregates.link_member`: 36 bits of a hash per linked entity;
a month set stops growing at `aggregates.LINK_CAP` members), and the feature is the distinct
members, capped: ``min(distinct members over the months, LINK_CAP)`` — a month set that stopped
growing holds the cap already, so the union is past it whatever the set missed.

This module is the one place the columnar replay knows the link layout: `member_codes` and
`link_counts` are what change if the Features table's sketch does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dozor.domain import aggregates as agg

_NONE = np.iinfo(np.int64).max  # "no unit in that month": greater than every sequence number


def month_of_day(days: np.ndarray) -> np.ndarray:
    """Calendar month index (months since 1970-01) of epoch day numbers."""
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def member_codes(values: Sequence[str]) -> np.ndarray:
    """For entity values (by code), the code of the sketch member each is stored as (equal members,
    equal codes), so two values whose hashes collide count once, as in the stored set."""
    known: dict[str, int] = {}
    return np.array(
        [known.setdefault(agg.link_member(v), len(known)) for v in values], dtype=np.int64
    ).reshape(-1)


def link_counts(entity: np.ndarray, seq: np.ndarray, day: np.ndarray, member: np.ndarray) -> np.ndarray:
    """The ``*_distinct_*_2mo`` value of each order: distinct members read, at most the cap."""
    return np.asarray(np.minimum(distinct_links(entity, seq, day, member), agg.LINK_CAP), dtype=np.float64)


def distinct_links(entity: np.ndarray, seq: np.ndarray, day: np.ndarray, linked: np.ndarray) -> np.ndarray:
    """For each order, the distinct ``linked`` values the earlier-stored orders of its entity named
    in the months its window reads.

    Arrays are aligned, one element per order of one entity kind: the entity's code, the order's
    place in the arrival sequence (unique), its epoch day, and the code of the linked entity it
    names (-1: none; such an order reads but adds nothing).

    A value counts when some order of the entity named it in one of the months read and was stored
    before the reader. Each (entity, value, month) is reduced to its first storer (a *unit*), and
    for every possible month range a unit counts only if it is the earliest of its value in the
    range, so that each value is counted once: the count is then a range count of units by
    (entity, month, first storer) — a searchsorted, with no loop over orders.
    """
    n = len(entity)
    result = np.zeros(n, dtype=np.int64)
    writes = np.flatnonzero(linked >= 0)
    if n == 0 or len(writes) == 0:
        return result
    month = month_of_day(day)
    hi = month
    span = hi - month_of_day(day - 29)  # 0, 1 or 2 months back
    m0 = int(month.min()) - 2
    months = int(month.max()) - m0 + 3
    top = int(seq.max()) + 2
    if (int(entity.max()) + 1) * months * top >= 2**62:
        raise OverflowError("history too large for 64-bit unit keys")
    ue, um, uf, below, above = _units(entity[writes], linked[writes], month[writes], seq[writes])
    below1, below2 = below
    above1, above2 = above
    # Which units are the earliest of their value in a range [hi - span, hi], by (span, hi - month).
    flags = {
        (0, 0): np.ones(len(uf), dtype=bool),
        (1, 0): uf < below1,
        (1, 1): uf < above1,
        (2, 0): (uf < below1) & (uf < below2),
        (2, 1): (uf < below1) & (uf < above1),
        (2, 2): (uf < above1) & (uf < above2),
    }
    base_of_unit = (ue * months + (um - m0)) * top
    known = np.zeros(int(entity.max()) + 1, dtype=bool)
    known[ue] = True  # most entities never name a linked value before: they read nothing
    asking = known[entity]
    for (back, offset), flagged in flags.items():
        readers = np.flatnonzero(asking & (span == back))
        if len(readers) == 0:
            continue
        keys = np.sort(base_of_unit[flagged] + uf[flagged])
        base = (entity[readers] * months + (hi[readers] - offset - m0)) * top
        result[readers] += np.searchsorted(keys, base + seq[readers], "left") - np.searchsorted(
            keys, base, "left"
        )
    return result


def _units(
    entity: np.ndarray, value: np.ndarray, month: np.ndarray, seq: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Units (entity, month, first storer), sorted by (entity, value, month), with the first storer
    of the same value one and two months earlier and later (`_NONE` where it has none)."""
    order = np.lexsort((seq, month, value, entity))
    e, v, m, s = entity[order], value[order], month[order], seq[order]
    first = np.ones(len(e), dtype=bool)
    first[1:] = (e[1:] != e[:-1]) | (v[1:] != v[:-1]) | (m[1:] != m[:-1])
    e, v, m, f = e[first], v[first], m[first], s[first]

    def neighbour(step: int, months_away: int) -> np.ndarray:
        """The first storer of the unit ``step`` places away, if it is the same value ``months_away`` off."""
        out = np.full(len(f), _NONE, dtype=np.int64)
        if abs(step) >= len(f):
            return out
        here = slice(max(0, -step), len(f) - max(0, step))
        there = slice(max(0, step), len(f) - max(0, -step))
        same = (e[here] == e[there]) & (v[here] == v[there]) & (m[there] - m[here] == months_away)
        out[here] = np.where(same, f[there], _NONE)
        return out

    # Units of one value are sorted by month, so the unit a month off is one place away, and the
    # unit two months off one place away (no unit in between) or two.
    below1 = neighbour(-1, -1)
    below2 = np.minimum(neighbour(-1, -2), neighbour(-2, -2))
    above1 = neighbour(1, 1)
    above2 = np.minimum(neighbour(1, 2), neighbour(2, 2))
    return e, m, f, (below1, below2), (above1, above2)

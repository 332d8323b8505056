"""Time-bucketed aggregates: which earlier orders each window sees, on known histories.

Window semantics (what these tests pin down), all in UTC and at bucket resolution:

- 1h  = the 5-minute bucket of the moment plus the 11 before it. An earlier order is counted
  iff its bucket is 0..11 buckets back, so one at most 55 min earlier is always in, one 60 min
  or more earlier is always out, and in between it depends on where the buckets fall
  (55m01s can already be out, 59m59s can still be in).
- 24h = the current hourly bucket plus the 23 before it (in up to 23 h, out from 24 h).
- 7d / 30d = the current UTC day plus the 6 / 29 days before it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dozor.adapters.memory import InMemoryAggregates
from dozor.domain import aggregates as agg
from dozor.domain.aggregates import (
    Entity,
    apply_updates,
    keys_for,
    summarise,
    updates_for,
)
from dozor.domain.fraud.features import LINKS

CARD = Entity("card", "c0ffee")
BUYER = Entity("buyer", "buyer-1")

WINDOW_SECONDS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
RESOLUTION = {"1h": 300, "24h": 3600, "7d": 86400, "30d": 86400}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def record(store: InMemoryAggregates, entity: Entity, at: datetime, amount: float = 100.0, **links: str):
    store.apply(updates_for(entity, at, amount, links or None))


def seen_at(store: InMemoryAggregates, entity: Entity, at: datetime) -> agg.EntityAggregates:
    """What an order at ``at`` sees, reading only the keys serving would read."""
    return summarise(entity, at, store.read(keys_for([entity], at)), LINKS.get(entity.kind, ()))


def history(*times: datetime, entity: Entity = CARD) -> InMemoryAggregates:
    store = InMemoryAggregates()
    for t in times:
        record(store, entity, t)
    return store


# ---------------------------------------------------------------------------------------------
# Window edges on hand-picked histories
# ---------------------------------------------------------------------------------------------

_EDGES = [
    # (case, earlier order, moment of reading, window, counted?)
    ("1h: 55 min before", utc(2025, 5, 10, 11, 5), utc(2025, 5, 10, 12, 0), "1h", True),
    ("1h: 61 min before", utc(2025, 5, 10, 10, 59), utc(2025, 5, 10, 12, 0), "1h", False),
    ("1h: 59m59s before, bucket 11 back", utc(2025, 5, 10, 11, 5), utc(2025, 5, 10, 12, 4, 59), "1h", True),
    ("1h: 55m01s before, bucket 12 back", utc(2025, 5, 10, 11, 4, 59), utc(2025, 5, 10, 12, 0), "1h", False),
    ("1h: same 5-minute bucket", utc(2025, 5, 10, 12, 0), utc(2025, 5, 10, 12, 4, 59), "1h", True),
    ("1h: across midnight", utc(2025, 5, 9, 23, 50), utc(2025, 5, 10, 0, 20), "1h", True),
    ("1h: across a month end", utc(2025, 4, 30, 23, 58), utc(2025, 5, 1, 0, 3), "1h", True),
    ("1h: across a year end", utc(2024, 12, 31, 23, 55), utc(2025, 1, 1, 0, 5), "1h", True),
    ("24h: 23.5 h before", utc(2025, 5, 9, 13, 0), utc(2025, 5, 10, 12, 30), "24h", True),
    ("24h: 23h31m before, hour 24 back", utc(2025, 5, 9, 12, 59), utc(2025, 5, 10, 12, 30), "24h", False),
    ("24h: 24 h before", utc(2025, 5, 9, 12, 30), utc(2025, 5, 10, 12, 30), "24h", False),
    ("24h: across midnight", utc(2025, 5, 9, 14, 0), utc(2025, 5, 10, 9, 0), "24h", True),
    ("24h: across a month end", utc(2025, 2, 28, 22, 0), utc(2025, 3, 1, 6, 0), "24h", True),
    ("7d: 6 days 23:59 before", utc(2025, 5, 4, 0, 0), utc(2025, 5, 10, 23, 59), "7d", True),
    ("7d: 6 days 00:31 before, day 7 back", utc(2025, 5, 3, 23, 59), utc(2025, 5, 10, 0, 30), "7d", False),
    ("7d: across a month end", utc(2025, 4, 27, 12, 0), utc(2025, 5, 2, 12, 0), "7d", True),
    ("30d: 29 days back", utc(2025, 5, 1, 0, 0), utc(2025, 5, 30, 10, 0), "30d", True),
    ("30d: 30 days back", utc(2025, 4, 30, 23, 59), utc(2025, 5, 30, 10, 0), "30d", False),
    ("30d: Jan 31 from Mar 1 (29 days back)", utc(2025, 1, 31, 12, 0), utc(2025, 3, 1, 8, 0), "30d", True),
    ("30d: Jan 30 from Mar 1 (30 days back)", utc(2025, 1, 30, 23, 0), utc(2025, 3, 1, 8, 0), "30d", False),
    ("30d: leap year, Feb 1 from Mar 1", utc(2024, 2, 1, 0, 0), utc(2024, 3, 1, 23, 0), "30d", True),
    ("30d: leap year, Jan 31 from Mar 1", utc(2024, 1, 31, 23, 59), utc(2024, 3, 1, 0, 0), "30d", False),
]


@pytest.mark.parametrize(
    ("earlier", "now", "window", "counted"),
    [case[1:] for case in _EDGES],
    ids=[case[0] for case in _EDGES],
)
def test_given_one_earlier_order_when_summarised_then_window_counts_it_only_inside_the_edge(
    earlier: datetime, now: datetime, window: str, counted: bool
) -> None:
    # Given one order on a card at `earlier`
    store = history(earlier)
    # When an order at `now` reads the card's aggregates
    seen = seen_at(store, CARD, now)
    # Then the window counts it exactly when it lies inside the window's bucket edge
    assert seen.counts[window] == (1.0 if counted else 0.0)
    assert seen.amounts[window] == (100.0 if counted else 0.0)


def test_given_a_history_across_windows_then_longer_windows_contain_shorter_ones() -> None:
    # Given orders 10 min, 3 h, 3 days, 20 days and 45 days before a moment
    now = utc(2025, 3, 5, 10, 0)
    ago = [timedelta(minutes=10), timedelta(hours=3), timedelta(days=3), timedelta(days=20)]
    store = history(*(now - d for d in [*ago, timedelta(days=45)]))
    # When summarised at that moment
    seen = seen_at(store, CARD, now)
    # Then each window counts exactly the orders inside it; the 45-day-old order only in lifetime
    assert seen.counts == {"1h": 1.0, "24h": 2.0, "7d": 3.0, "30d": 4.0}
    assert seen.lifetime_orders == 5.0


def test_given_links_on_january_31_and_in_february_then_an_order_on_march_1_sees_both() -> None:
    # Given the 30-day window from 1 March reaches 31 January, past the whole of February
    store = InMemoryAggregates()
    record(store, CARD, utc(2025, 1, 31, 12, 0), buyer="A")
    record(store, CARD, utc(2025, 2, 14, 12, 0), buyer="B")
    # When an order on 1 March reads the card's links
    seen = seen_at(store, CARD, utc(2025, 3, 1, 8, 0))
    # Then every month the window touches is read, not only the first and last
    assert seen.links == {"buyer": 2}


def test_given_orders_in_another_time_zone_then_buckets_follow_utc_instant() -> None:
    # Given an order stamped 00:10 in Kamchatka (UTC+12), i.e. 12:10 UTC the previous day
    kamchatka = timezone(timedelta(hours=12))
    store = history(datetime(2025, 5, 10, 0, 10, tzinfo=kamchatka))
    # When read 30 minutes later in UTC, and again 25 hours later
    soon = seen_at(store, CARD, utc(2025, 5, 9, 12, 40))
    later = seen_at(store, CARD, utc(2025, 5, 10, 13, 10))
    # Then windows measure elapsed time, not wall-clock dates in the order's zone
    assert soon.counts["1h"] == 1.0
    assert later.counts["24h"] == 0.0
    assert later.counts["7d"] == 1.0


# ---------------------------------------------------------------------------------------------
# Amounts, profile, links
# ---------------------------------------------------------------------------------------------


def test_given_several_orders_then_amounts_are_summed_per_window() -> None:
    # Given three orders of 100, 250.5 and 1000 RUB at 10 min, 2 h and 2 days before a moment
    now = utc(2025, 6, 15, 18, 0)
    store = InMemoryAggregates()
    record(store, CARD, now - timedelta(minutes=10), 100.0)
    record(store, CARD, now - timedelta(hours=2), 250.5)
    record(store, CARD, now - timedelta(days=2), 1000.0)
    # When summarised
    seen = seen_at(store, CARD, now)
    # Then each window's amount is the sum of the orders inside it
    assert seen.amounts["1h"] == pytest.approx(100.0)
    assert seen.amounts["24h"] == pytest.approx(350.5)
    assert seen.amounts["7d"] == pytest.approx(1350.5)
    assert seen.amounts["30d"] == pytest.approx(1350.5)


def test_given_two_orders_in_one_bucket_then_both_count() -> None:
    # Given two orders a minute apart (same 5-minute, hourly and daily bucket)
    store = InMemoryAggregates()
    record(store, CARD, utc(2025, 6, 15, 18, 1), 10.0)
    record(store, CARD, utc(2025, 6, 15, 18, 2), 20.0)
    # When summarised shortly after
    seen = seen_at(store, CARD, utc(2025, 6, 15, 18, 3))
    # Then the bucket holds both orders and both amounts
    assert seen.counts["1h"] == 2.0
    assert seen.amounts["1h"] == pytest.approx(30.0)


def test_given_later_orders_then_first_seen_stays_at_the_first_order() -> None:
    # Given a first order and two later ones
    first = utc(2025, 1, 10, 9, 0)
    store = history(first, first + timedelta(days=3), first + timedelta(days=40))
    # When summarised after all of them
    seen = seen_at(store, CARD, first + timedelta(days=41))
    # Then first_seen is still the first order's instant, and lifetime counts all three
    assert seen.first_seen == first.timestamp()
    assert seen.lifetime_orders == 3.0


def test_given_an_unseen_entity_then_everything_is_zero_and_first_seen_missing() -> None:
    # Given history for another entity only
    store = history(utc(2025, 1, 10, 9, 0), entity=BUYER)
    # When summarising a card never seen
    seen = seen_at(store, CARD, utc(2025, 1, 10, 9, 5))
    # Then counts are zero, there is no first_seen, no links and no list status
    assert set(seen.counts.values()) == {0.0}
    assert set(seen.amounts.values()) == {0.0}
    assert seen.first_seen is None
    assert seen.lifetime_orders == 0.0
    assert seen.links == {"buyer": 0}  # a card links buyers, none yet
    assert seen.list_status is None


def test_given_the_same_buyer_twice_then_links_count_it_once() -> None:
    # Given a card used by buyer A twice and buyer B once
    store = InMemoryAggregates()
    t = utc(2025, 6, 1, 12, 0)
    record(store, CARD, t, buyer="A")
    record(store, CARD, t + timedelta(hours=1), buyer="A")
    record(store, CARD, t + timedelta(hours=2), buyer="B")
    # When summarised
    seen = seen_at(store, CARD, t + timedelta(hours=3))
    # Then the card has two distinct buyers, though three orders
    assert seen.links == {"buyer": 2}
    assert seen.counts["24h"] == 3.0


def test_given_links_in_earlier_months_then_they_are_seen_while_their_month_is_read() -> None:
    # Given buyer A on a card on 20 January and buyer B on 5 February
    store = InMemoryAggregates()
    record(store, CARD, utc(2025, 1, 20, 12, 0), buyer="A")
    record(store, CARD, utc(2025, 2, 5, 12, 0), buyer="B")
    # When summarised on 15 February (January still read), on 1 March (29 days back is
    # 31 January) and on 2 March (29 days back is 1 February: January no longer read)
    mid_feb = seen_at(store, CARD, utc(2025, 2, 15, 0, 0))
    mar_1 = seen_at(store, CARD, utc(2025, 3, 1, 0, 0))
    mar_2 = seen_at(store, CARD, utc(2025, 3, 2, 0, 0))
    # Then links follow the months that are read
    assert mid_feb.links == {"buyer": 2}
    assert mar_1.links == {"buyer": 2}
    assert mar_2.links == {"buyer": 1}


def test_given_a_profile_list_attribute_then_list_status_is_reported() -> None:
    # Given ops put the card on the block list
    store = history(utc(2025, 1, 10, 9, 0))
    store.items[(CARD.pk, agg.PROFILE)]["list"] = "block"
    # When summarised
    seen = seen_at(store, CARD, utc(2025, 1, 10, 9, 5))
    # Then the status is read from the profile, and orders still count
    assert seen.list_status == "block"
    assert seen.lifetime_orders == 1.0


def test_given_apply_updates_then_it_adds_unions_and_sets_once() -> None:
    # Given an item with a counter, a set and a field that is set once
    items: dict[agg.Key, dict[str, object]] = {}
    key = ("card#x", "M#202501")
    # When two updates are applied to it
    apply_updates(items, [agg.ContainerUpdate(key, {"n01": 1}, {"lk_buyer": {"A"}}, {"first": 5})])
    apply_updates(items, [agg.ContainerUpdate(key, {"n01": 2}, {"lk_buyer": {"A", "B"}}, {"first": 9})])
    # Then counters add up, sets union and the set-once field keeps its first value
    assert items[key] == {"n01": 3.0, "lk_buyer": {"A", "B"}, "first": 5}


# ---------------------------------------------------------------------------------------------
# Properties over random histories
# ---------------------------------------------------------------------------------------------

_BASE = int(utc(2025, 1, 1).timestamp())
_NINETY_DAYS = 90 * 86400


def _reference_counted(order_epoch: int, read_epoch: int, window: str) -> bool:
    """Independent statement of the bucket rule: buckets back from the reading's bucket."""
    resolution = RESOLUTION[window]
    buckets_back = read_epoch // resolution - order_epoch // resolution
    return 0 <= buckets_back < WINDOW_SECONDS[window] // resolution


_read_epochs = st.integers(_BASE + _NINETY_DAYS, _BASE + 2 * _NINETY_DAYS)
_order_offsets = st.lists(st.integers(-3 * 3600, _NINETY_DAYS), min_size=1, max_size=25)
_buyers = st.sampled_from(["A", "B", "C", "D"])


@settings(max_examples=80, deadline=None)
@given(read_epoch=_read_epochs, offsets=_order_offsets, data=st.data())
def test_property_given_random_history_then_windows_match_bucket_rule_and_keys_for_suffices(
    read_epoch: int, offsets: list[int], data: st.DataObject
) -> None:
    # Given orders at random times up to 90 days before (and a little after) a moment,
    # each with a random amount and buyer
    store = InMemoryAggregates()
    orders = []
    for offset in offsets:
        epoch = read_epoch - offset
        amount = data.draw(st.integers(1, 10_000))
        record(store, CARD, datetime.fromtimestamp(epoch, UTC), float(amount), buyer=data.draw(_buyers))
        orders.append((epoch, amount))
    now = datetime.fromtimestamp(read_epoch, UTC)

    # When summarised over only the keys `keys_for` lists, and over the whole store
    restricted = seen_at(store, CARD, now)
    full = summarise(CARD, now, store.items, LINKS["card"])

    # Then reading only `keys_for` loses nothing
    assert restricted == full
    # And every window counts exactly the orders whose bucket is inside it
    for window in WINDOW_SECONDS:
        inside = [(e, a) for e, a in orders if _reference_counted(e, read_epoch, window)]
        assert restricted.counts[window] == len(inside), window
        assert restricted.amounts[window] == sum(a for _, a in inside), window
    assert restricted.lifetime_orders == len(orders)


@settings(max_examples=100, deadline=None)
@given(read_epoch=_read_epochs, elapsed=st.integers(0, 31 * 86400))
def test_property_given_elapsed_time_then_orders_well_inside_are_in_and_at_window_length_are_out(
    read_epoch: int, elapsed: int
) -> None:
    # Given one order `elapsed` seconds before a moment
    store = history(datetime.fromtimestamp(read_epoch - elapsed, UTC))
    # When summarised at that moment
    seen = seen_at(store, CARD, datetime.fromtimestamp(read_epoch, UTC))
    # Then it is counted when younger than the window less one bucket, and never when as old
    # as the window or older, whatever the alignment
    for window, seconds in WINDOW_SECONDS.items():
        if elapsed <= seconds - RESOLUTION[window]:
            assert seen.counts[window] == 1.0, window
        if elapsed >= seconds:
            assert seen.counts[window] == 0.0, window


@settings(max_examples=60, deadline=None)
@given(
    read_epoch=_read_epochs, offsets=_order_offsets, lag=st.integers(0, agg.MAX_ARRIVAL_SKEW), data=st.data()
)
def test_property_given_pruning_at_any_moment_then_no_reader_within_the_slack_sees_a_difference(
    read_epoch: int, offsets: list[int], lag: int, data: st.DataObject
) -> None:
    # Given a card's random history up to 90 days back, with links
    store = InMemoryAggregates()
    for offset in offsets:
        at = datetime.fromtimestamp(read_epoch - offset, UTC)
        record(store, CARD, at, float(data.draw(st.integers(1, 10_000))), buyer=data.draw(_buyers))
    whole = {k: dict(v) for k, v in store.items.items()}
    # When a write at `read_epoch` prunes what it finds stale (as the stores do)
    for item in store.items.values():
        agg.prune(item, read_epoch // agg.FIVE_MINUTES)
    # Then an order up to the late-arrival slack older than that write sees exactly the same
    reader = datetime.fromtimestamp(read_epoch - lag, UTC)
    assert seen_at(store, CARD, reader) == summarise(CARD, reader, whole, LINKS["card"])
    # And pruning removed something whenever the history reached past every window
    if max(offsets) > 40 * 86400:
        assert len(store.items[(CARD.pk, agg.PROFILE)]) < len(whole[(CARD.pk, agg.PROFILE)])


def test_given_more_linked_buyers_than_the_cap_then_links_say_the_cap_in_any_order() -> None:
    # Given a pickup-point address receiving for LINK_CAP + 20 buyers within a week, the writes
    # fitted to what each read showed (as serving does) and not (as the replay does)
    address = Entity("address", "pvz-1")
    t = utc(2025, 6, 1, 12, 0)
    buyers = [f"b{i}" for i in range(agg.LINK_CAP + 20)]
    fitted, plain = InMemoryAggregates(), InMemoryAggregates()
    for i, buyer in enumerate(buyers):
        updates = updates_for(address, t + timedelta(minutes=i), 10.0, {"buyer": buyer})
        fitted.apply(agg.fitted_to_stored(updates, fitted.read(keys_for([address]))))
        plain.apply(updates)
    # When an order reads the address's links
    later = t + timedelta(days=1)
    seen_fitted = summarise(address, later, fitted.items, ("buyer",))
    seen_plain = summarise(address, later, plain.items, ("buyer",))
    # Then both say the cap; the fitted store keeps no more than the cap of members
    assert seen_fitted.links == seen_plain.links == {"buyer": agg.LINK_CAP}
    (sketch,) = (v for k, v in fitted.items[(address.pk, agg.PROFILE)].items() if k.startswith("k"))
    assert len(sketch) == agg.LINK_CAP  # type: ignore[arg-type]
    # And below the cap the count is exact
    few = InMemoryAggregates()
    for i, buyer in enumerate(buyers[:10] * 2):
        few.apply(updates_for(address, t + timedelta(minutes=i), 10.0, {"buyer": buyer}))
    assert summarise(address, later, few.items, ("buyer",)).links == {"buyer": 10}


def test_given_a_seller_written_across_shards_then_a_read_sums_them() -> None:
    # Given a seller's orders written by three writers on different shards
    seller = Entity("seller", "s-1")
    t = utc(2025, 6, 1, 12, 0)
    sharded, single = InMemoryAggregates(), InMemoryAggregates()
    for i, writer in enumerate([0, 5, 5, 11, 0]):
        (update,) = updates_for(seller, t + timedelta(minutes=i), 100.0 + i)
        key = agg.shard_key(update.key, writer)
        sharded.apply([agg.ContainerUpdate(key, update.add, set_min=update.set_min)])
        single.apply([update])
    assert len(sharded.items) == 3
    # When an order reads every shard
    now = t + timedelta(minutes=10)
    seen = summarise(seller, now, sharded.read(keys_for([seller])))
    # Then it sees exactly what one item would have held
    assert seen == summarise(seller, now, single.items)
    assert seen.counts["1h"] == 5.0 and seen.first_seen == t.timestamp()


@settings(max_examples=50, deadline=None)
@given(epoch=st.integers(_BASE, _BASE + 4 * 365 * 86400))
def test_property_keys_for_reads_each_container_once_for_every_entity(epoch: int) -> None:
    # Given two entities at any moment
    at = datetime.fromtimestamp(epoch, UTC)
    # When listing the keys to read, with a seller
    seller = Entity("seller", "s-1")
    keys = keys_for([CARD, BUYER, seller], at)
    # Then there are no duplicates: one item per entity, every shard of the seller
    assert len(keys) == len(set(keys))
    assert [k for k in keys if k[0] in (CARD.pk, BUYER.pk)] == [(CARD.pk, "P"), (BUYER.pk, "P")]
    assert len([k for k in keys if k[0].startswith(seller.pk)]) == agg.SHARDS["seller"]
    # And every key an order of any shard writes is among them
    (update,) = updates_for(seller, at, 1.0)
    assert {agg.shard_key(update.key, w) for w in range(40)} <= set(keys)

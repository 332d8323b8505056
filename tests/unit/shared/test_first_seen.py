"""Stored aggregates do not depend on arrival order: minimums, expiries, the arrival replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dozor.adapters.dynamodb.codec import minimums_settled, update_request
from dozor.domain import aggregates as agg
from dozor.domain.contracts import Order
from dozor.domain.fraud.features import FEATURE_INDEX
from dozor_training.fraud.replay import MAX_ARRIVAL_SKEW, OutOfOrderError, replay, serving_sequence

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SELLER = agg.Entity("seller", "s-1")


def order(i: int, minutes: float, buyer: str = "b-1") -> Order:
    return Order.model_validate(
        {
            "order_id": f"o-{i}",
            "created_at": (T0 + timedelta(minutes=minutes)).isoformat(),
            "buyer": {"id": buyer},
            "seller": {"id": "s-1"},
            "amount": 1000 + i,
            "currency": "RUB",
        }
    )


@settings(max_examples=50)
@given(st.permutations([0, 7, 45, 60 * 24 * 3, 60 * 24 * 40]), st.integers(1, 4))
def test_given_any_arrival_order_then_the_containers_are_the_same(minutes: list[int], batch: int) -> None:
    # Given a seller's orders over 40 days stored in some arrival order, in batches
    def stored(times: list[int]) -> dict[agg.Key, dict[str, object]]:
        items: dict[agg.Key, dict[str, object]] = {}
        for start in range(0, len(times), batch):
            for m in times[start : start + batch]:
                agg.apply_updates(items, agg.updates_for(SELLER, T0 + timedelta(minutes=m), 10.0))
        return items

    # Then every container, first_seen and expires_at included, is as in time order
    assert stored(minutes) == stored(sorted(minutes))
    assert stored(minutes)[(SELLER.pk, agg.PROFILE)]["first_seen"] == T0.timestamp()


def test_a_bucket_is_removed_only_after_its_last_window_and_the_late_arrival_slack() -> None:
    # Given a seller's item holding one order's buckets
    items: dict[agg.Key, dict[str, object]] = {}
    agg.apply_updates(items, agg.updates_for(SELLER, T0, 1.0))
    item = items[(SELLER.pk, agg.PROFILE)]
    five = next(n for n in item if n.startswith("c"))
    hour = next(n for n in item if n.startswith("h"))
    day = next(n for n in item if n.startswith("d"))

    def stale(after: timedelta) -> set[str]:
        return set(agg.stale_attributes(item, int((T0 + after).timestamp()) // agg.FIVE_MINUTES))

    # Then the 5-minute bucket outlives the 1 h window by the slack, the hourly one the 24 h
    # window, the daily one the 30 d window (plus a day); lifetime totals never go
    skew = timedelta(seconds=agg.MAX_ARRIVAL_SKEW)
    assert five not in stale(timedelta(hours=1) + skew - timedelta(minutes=5))
    assert five in stale(timedelta(hours=1) + skew)
    assert hour not in stale(timedelta(hours=24) + skew - timedelta(hours=1))
    assert hour in stale(timedelta(hours=24) + skew)
    assert day not in stale(timedelta(days=30))
    assert day in stale(timedelta(days=31))
    assert not {"orders", "amount", "first_seen"} & stale(timedelta(days=400))


def test_a_minimum_the_read_already_holds_is_not_written_again() -> None:
    later, earlier = (agg.updates_for(SELLER, T0 + timedelta(hours=h), 1.0)[0] for h in (5, -5))
    snapshot = {(SELLER.pk, agg.PROFILE): {"first_seen": T0.timestamp(), "orders": 1.0}}
    assert agg.settled_minimums_dropped([later], snapshot)[0].set_min == {}
    assert agg.settled_minimums_dropped([earlier], snapshot)[0].set_min == {
        "first_seen": earlier.set_min["first_seen"]
    }
    assert agg.settled_minimums_dropped([later], {})[0].set_min == later.set_min  # nothing read: ask
    assert agg.settled_minimums_dropped([later], snapshot)[0].add == later.add


def test_dynamodb_writes_a_minimum_as_a_conditional_set_and_drops_it_when_undercut() -> None:
    (profile,) = agg.updates_for(SELLER, T0, 5.0)
    request = update_request("Features", profile)
    assert request["ConditionExpression"] == "(attribute_not_exists(#m0) OR #m0 > :m0)"
    assert "#m0 = :m0" in request["UpdateExpression"] and "ADD" in request["UpdateExpression"]
    settled = agg.fitted_to_stored([profile], {profile.key: {"first_seen": T0.timestamp() - 1}})[0]
    assert "ConditionExpression" not in update_request("Features", settled)
    label = agg.label_updates_for(SELLER, T0, agg.FRAUD)[0]
    retried = minimums_settled([profile, label], [0])
    assert retried is not None and retried[0].set_min == {} and retried[0].add == profile.add
    assert minimums_settled([profile, label], [1]) is None  # a condition without a minimum: a real conflict


def test_orders_arriving_in_time_order_replay_as_the_point_in_time_view() -> None:
    orders = [order(i, m, buyer=f"b-{i % 2}") for i, m in enumerate([0, 3, 50, 61, 200, 1500])]
    batches = [orders[:2][::-1], orders[2:5][::-1], orders[5:]]
    by_arrival = replay(serving_sequence(batches), arrival=True)
    by_time = replay(orders)
    assert by_arrival.order_ids == by_time.order_ids
    np.testing.assert_array_equal(by_arrival.matrix, by_time.matrix)


def test_a_late_order_is_replayed_by_arrival_and_counted_once() -> None:
    # Given a 00:30 order stored before the 00:00 order, and delivered again after it
    early, late = order(1, 0), order(2, 30)
    result = replay([late, early, late], arrival=True)
    # Then each is replayed once; the newer saw nothing, the late one sees the newer (by arrival)
    assert result.order_ids == ["o-2", "o-1"]
    lifetime = FEATURE_INDEX["seller_lifetime_orders"]
    assert list(result.matrix[:, lifetime]) == [0.0, 1.0]
    assert result.matrix[1, FEATURE_INDEX["seller_age_days"]] == 0.0


def test_an_order_later_than_the_bounded_skew_is_refused() -> None:
    newest, too_late = order(1, 0), order(2, -(MAX_ARRIVAL_SKEW / 60) - 1)
    with pytest.raises(OutOfOrderError):
        replay([newest, too_late], arrival=True)
    assert len(replay([newest, order(3, -(MAX_ARRIVAL_SKEW / 60) + 1)], arrival=True)) == 2

"""Training replay is point-in-time: an order's features are fixed by what happened before it.

Later orders, and labels reported after the order, never change its row; a label reported
before it does. The two-process replay gives the one-process matrix exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dozor.domain.contracts import Order
from dozor.domain.feedback import Label, Loss
from dozor.domain.fraud.features import FEATURE_INDEX, FEATURE_NAMES
from dozor_training.fraud.replay import OutOfOrderError, replay, replay_parallel
from dozor_training.fraud.simulator import SimulationConfig, simulate
from tests.helpers.orders import build_order

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def card_orders(n: int, *, card: str = "fp-1", seller: str = "s-1", step_hours: float = 6) -> list[Order]:
    return [
        build_order(
            f"o{i}",
            T0 + timedelta(hours=i * step_hours),
            buyer=f"b{i % 3}",
            seller=seller,
            card=card,
            shipping={"country": "RU", "region": "RU-MOW", "city": "Moscow", "address": f"street {i % 2}"},
        )
        for i in range(n)
    ]


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


def test_given_a_chargeback_reported_before_an_order_then_its_card_and_seller_features_see_it() -> None:
    # Given order o0 charged back 2 hours after it was placed, and later orders on the same card
    orders = card_orders(4)
    chargeback = Label("o0", True, orders[0].created_at + timedelta(hours=2))
    # When the history is replayed with the label
    rows = replay(orders, [chargeback]).matrix
    # Then o1 (6 h after o0) sees one fraud label on the card, the buyer-less seller rate too
    assert rows[1, FEATURE_INDEX["card_fraud_labels_30d"]] == 1
    assert rows[1, FEATURE_INDEX["card_fraud_labels_lifetime"]] == 1
    assert rows[1, FEATURE_INDEX["seller_fraud_rate_7d"]] == pytest.approx(1.0)  # 1 label, 1 earlier order
    assert rows[2, FEATURE_INDEX["seller_fraud_rate_7d"]] == pytest.approx(0.5)
    # And o0 itself, placed before its own chargeback, sees nothing
    assert rows[0, FEATURE_INDEX["card_fraud_labels_30d"]] == 0


def test_given_labels_reported_after_an_order_then_its_row_does_not_change() -> None:
    orders = card_orders(6)
    baseline = replay(orders).matrix
    # A chargeback for o0 reported after o3 was placed, and a legit verdict, and a loss
    late = [
        Label("o0", True, orders[3].created_at + timedelta(minutes=1)),
        Label("o1", False, orders[1].created_at + timedelta(minutes=5)),
    ]
    losses = [Loss("o3", orders[4].created_at + timedelta(minutes=1))]  # o3 and o5 share an address
    rows = replay(orders, late, losses).matrix
    # Rows up to o3 are untouched; o4 sees the chargeback, o5 the loss too
    assert same(rows[:4], baseline[:4])
    assert rows[4, FEATURE_INDEX["card_fraud_labels_30d"]] == 1
    assert rows[5, FEATURE_INDEX["seller_loss_rate_30d"]] > 0
    assert rows[5, FEATURE_INDEX["address_losses_30d"]] == 1
    # A legit verdict counts for nothing
    assert same(replay(orders, late[1:]).matrix, baseline)


def test_given_the_same_order_labelled_twice_then_it_counts_once() -> None:
    orders = card_orders(3)
    twice = [Label("o0", True, orders[0].created_at + timedelta(hours=1))]
    rows = replay(orders, twice).matrix
    assert rows[2, FEATURE_INDEX["card_fraud_labels_30d"]] == 1


@settings(max_examples=15, deadline=None)
@given(
    cut=st.integers(min_value=1, max_value=39), extra_label_hours=st.floats(min_value=0.0, max_value=500.0)
)
def test_property_an_order_row_never_depends_on_what_comes_after_it(
    cut: int, extra_label_hours: float
) -> None:
    history = simulate(SimulationConfig(days=2, seed=11, orders_per_day=20, fraud_rate=0.2))
    orders = sorted((Order.model_validate(s.order) for s in history), key=lambda o: o.created_at)[:40]
    labels = [Label(o.order_id, True, o.created_at + timedelta(hours=1)) for o in orders[::5]]
    prefix = replay(orders[:cut], labels).matrix
    # Adding later orders, and a label reported after the cut, changes nothing before the cut
    cut_time = orders[cut - 1].created_at
    later_label = Label(orders[0].order_id, True, cut_time + timedelta(hours=extra_label_hours, seconds=1))
    full = replay(orders, [*labels, later_label]).matrix
    assert same(full[:cut], prefix)


def test_given_two_processes_then_the_matrix_and_rule_hits_equal_the_single_pass() -> None:
    history = simulate(SimulationConfig(days=3, seed=5, orders_per_day=150))
    orders = [Order.model_validate(s.order) for s in history]
    labels = [
        Label(s.order["order_id"], s.is_fraud, s.label_reported_at) for s in history if s.label_reported_at
    ]
    losses = [Loss(o.order_id, o.created_at + timedelta(hours=3)) for o in orders[::17]]
    single = replay(orders, labels, losses)
    double = replay_parallel(orders, labels, losses)
    assert same(single.matrix, double.matrix)
    assert single.rule_hits == double.rule_hits
    assert single.order_ids == double.order_ids
    # Not vacuous: the label-based columns carry something
    label_columns = [i for i, n in enumerate(FEATURE_NAMES) if "labels" in n or "loss" in n]
    assert np.nansum(single.matrix[:, label_columns]) > 0


def test_given_an_unsorted_stream_then_replay_refuses_it() -> None:
    orders = card_orders(3)
    with pytest.raises(OutOfOrderError):
        replay(iter([orders[1], orders[0]]))
    # A list is sorted first, so the same orders as a list replay fine
    assert len(replay([orders[1], orders[0]])) == 2

"""The columnar replay computes exactly what the per-order replay (the serving code) computes.

Random histories of a few entities each, so orders share buyers, cards, sellers and addresses
and every window, month boundary and label path is crossed; amounts with cents and foreign
currencies, so sums depend on the order of additions. Matrices are compared NaN-aware and bit
for bit, and each order's aggregates in float64 against the `EntityAggregates` the per-order
replay built for it, so a sum folded in another order fails even where float32 hides it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dozor.domain import aggregates as agg
from dozor.domain.contracts import Order
from dozor.domain.feedback import Label, Loss
from dozor.domain.fraud import features
from dozor_training.fraud import replay as per_order
from dozor_training.fraud.columnar import kind_aggregates, order_columns, replay_columnar
from dozor_training.fraud.columnar_kernel import _segment_cumsum, feature_columns
from dozor_training.fraud.replay import OutOfOrderError, replay, serving_sequence
from dozor_training.fraud.simulator import SimulationConfig, simulate

T0 = datetime(2026, 1, 27, 22, 40, tzinfo=UTC)  # months end on the 31st, 28th and 31st after it
GAPS = st.sampled_from([0, 1, 59, 240, 299, 300, 1799, 3600, 4 * 3600, 86_399, 86_400, 6 * 86_400])
AMOUNTS = st.sampled_from([0.0, 0.01, 0.1, 3.33, 990.0, 1234.57, 49_999.99])


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.array_equal(a, b, equal_nan=True))


@st.composite
def histories(draw: st.DrawFn, max_orders: int = 24) -> tuple[list[Order], list[Label], list[Loss]]:
    """Orders over up to ~70 days, a handful of entities of each kind, some labels and losses."""
    n = draw(st.integers(1, max_orders))
    t = T0
    orders = []
    for i in range(n):
        t += timedelta(seconds=draw(GAPS) * draw(st.integers(1, 3)))

        def pick(k: int) -> int:
            return draw(st.integers(0, k))

        card, device, address = pick(3), pick(2), pick(2)
        payload: dict[str, Any] = {
            "order_id": f"o{i}",
            "created_at": t,
            "buyer": {"id": f"b{pick(2)}", "email": [None, "a1@x.ru", "b@mailinator.com"][pick(2)]},
            "seller": {"id": f"s{pick(1)}"},
            "amount": draw(AMOUNTS),
            "currency": draw(st.sampled_from(["RUB", "RUB", "USD", "CNY"])),
            "device_id": f"d{device}" if device else None,
            "ip": [None, "10.0.0.1", "10.0.0.2"][pick(2)],
        }
        if card:
            payload["payment"] = {"method": "card", "card_fingerprint": f"fp{card}", "card_country": "RU"}
        if address:
            payload["shipping"] = {
                "country": "RU",
                "region": "RU-MOW",
                "city": "M",
                "address": f"st {address}",
            }
        orders.append(Order.model_validate(payload))
    delays = st.floats(min_value=-3600, max_value=40 * 86_400, allow_nan=False)
    labels = [
        Label(o.order_id, draw(st.booleans()), o.created_at + timedelta(seconds=draw(delays)))
        for o in orders
        if draw(st.integers(0, 3)) == 0
    ]
    losses = [
        Loss(o.order_id, o.created_at + timedelta(seconds=draw(delays)))
        for o in orders
        if draw(st.integers(0, 5)) == 0
    ]
    return orders, labels, losses


def served_aggregates(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, agg.EntityAggregates]]:
    """Record every order's aggregates as the per-order replay builds them (in its order)."""
    seen: list[dict[str, agg.EntityAggregates]] = []
    original = features.view

    def recording(order: Order, entities: Any, snapshot: Any) -> features.OrderView:
        v = original(order, entities, snapshot)
        seen.append(v.aggregates)
        return v

    monkeypatch.setattr(features, "view", recording)  # the per-order replay calls features.view
    return seen


def assert_same_aggregates(columns: Any, served: list[dict[str, agg.EntityAggregates]]) -> int:
    """Every order's aggregates, field by field in float64; returns how many values were compared."""
    compared = 0
    for kind, rows, _, a in kind_aggregates(columns):
        for j, row in enumerate(rows.tolist()):
            s = served[row][kind]
            ours = {
                **{f"n{w}": a.counts[w][j] for w in a.counts},
                **{f"a{w}": a.amounts[w][j] for w in a.amounts},
                "lifetime": a.lifetime_orders[j],
                "first_seen": a.first_seen[j],
                "f7": a.fraud_labels["7d"][j],
                "f30": a.fraud_labels["30d"][j],
                "l30": a.losses["30d"][j],
                "flife": a.lifetime_fraud_labels[j],
                **{f"k{k}": a.links[k][j] for k in a.links},
            }
            theirs = {
                **{f"n{w}": s.counts[w] for w in a.counts},
                **{f"a{w}": s.amounts[w] for w in a.amounts},
                "lifetime": s.lifetime_orders,
                "first_seen": np.nan if s.first_seen is None else s.first_seen,
                "f7": s.fraud_labels["7d"],
                "f30": s.fraud_labels["30d"],
                "l30": s.losses["30d"],
                "flife": s.lifetime_fraud_labels,
                **{f"k{k}": float(s.links[k]) for k in a.links},
            }
            assert ours == pytest.approx(theirs, rel=0, abs=0, nan_ok=True), (kind, row)
            compared += len(ours)
        assert len(served) == len(columns.order_ids)
    return compared


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_property_in_time_order_the_columnar_replay_equals_the_per_order_replay(
    history: tuple[list[Order], list[Label], list[Loss]], monkeypatch: pytest.MonkeyPatch
) -> None:
    orders, labels, losses = history
    random.Random(len(orders)).shuffle(orders)  # a list is replayed in created_at order either way
    with monkeypatch.context() as m:
        served = served_aggregates(m)
        expected = replay(orders, labels, losses)
    got = replay_columnar(orders, labels, losses, workers=1)
    assert got.order_ids == expected.order_ids
    assert same(got.matrix, expected.matrix)
    assert got.rule_hits == expected.rule_hits
    assert np.array_equal(got.created_at, expected.created_at)
    assert got.buyer_ids == expected.buyer_ids
    assert_same_aggregates(order_columns(orders, labels, losses, workers=1), served)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Order], list[Label], list[Loss]]:
    """A history delivered as serving meets it: up to ~2 h late, in shuffled batches, some twice."""
    orders, labels, losses = draw(histories(max_orders=18))
    timed = sorted(orders, key=lambda o: o.created_at)
    lateness = [draw(st.integers(0, int(per_order.MAX_ARRIVAL_SKEW) - 60)) for _ in timed]
    arriving = [
        o
        for _, o in sorted(
            zip(lateness, timed, strict=True), key=lambda p: p[1].created_at.timestamp() + p[0]
        )
    ]
    for again in draw(st.lists(st.integers(0, len(arriving) - 1), max_size=3)):
        arriving.insert(draw(st.integers(again + 1, len(arriving))), arriving[again])
    batches = []
    while arriving:
        size = draw(st.integers(1, min(5, len(arriving))))
        batches.append(arriving[:size])
        arriving = arriving[size:]
    return serving_sequence(batches), labels, losses


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delivered=deliveries())
def test_property_in_arrival_order_the_columnar_replay_equals_the_per_order_replay(
    delivered: tuple[list[Order], list[Label], list[Loss]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sequence, labels, losses = delivered
    with monkeypatch.context() as m:
        served = served_aggregates(m)
        expected = replay(sequence, labels, losses, arrival=True)
    got = replay_columnar(sequence, labels, losses, arrival=True, workers=1)
    assert got.order_ids == expected.order_ids
    assert same(got.matrix, expected.matrix)
    assert got.rule_hits == expected.rule_hits
    assert_same_aggregates(order_columns(sequence, labels, losses, arrival=True, workers=1), served)


def simulated(days: int = 3, per_day: int = 150) -> tuple[list[Order], list[Label], list[Loss]]:
    history = simulate(SimulationConfig(days=days, seed=5, orders_per_day=per_day))
    orders = [Order.model_validate(s.order) for s in history]
    labels = [
        Label(s.order["order_id"], s.is_fraud, s.label_reported_at) for s in history if s.label_reported_at
    ]
    labels += [Label(o.order_id, True, o.created_at + timedelta(hours=2)) for o in orders[::13]]  # quick ones
    losses = [Loss(o.order_id, o.created_at + timedelta(hours=3)) for o in orders[::17]]
    return orders, labels, losses


def test_given_a_simulated_history_read_by_two_workers_then_it_equals_the_per_order_replay() -> None:
    orders, labels, losses = simulated()

    def stream() -> Iterator[Order]:
        return iter(sorted(orders, key=lambda o: o.created_at))

    expected = replay(orders, labels, losses)
    got = replay_columnar(stream, labels, losses, workers=2)  # a fresh stream per worker, as from a file
    assert got.order_ids == expected.order_ids
    assert same(got.matrix, expected.matrix)
    assert got.rule_hits == expected.rule_hits
    # Not vacuous: windows, links and labels carry values
    for name in (
        "seller_orders_1h",
        "buyer_distinct_cards_2mo",
        "card_fraud_labels_30d",
        "address_losses_30d",
    ):
        assert np.nansum(got.matrix[:, features.FEATURE_INDEX[name]]) > 0, name


def test_only_the_columns_the_kernels_fill_depend_on_history() -> None:
    # Given orders with history: their rows as serving computes them, and as computed without history
    orders, labels, losses = simulated(days=2, per_day=100)
    columns = order_columns(orders, labels, losses, workers=1)
    full = replay(orders, labels, losses).matrix
    filled: set[str] = set()
    for kind, _, kind_orders, aggregates in kind_aggregates(columns):
        mine = set(feature_columns(kind, kind_orders, aggregates))
        assert not mine & filled  # each column depends on one entity kind's aggregates
        filled |= mine
    # Then every column history changes is one the kernels fill, and those are all NaN without it
    alike = (full == columns.matrix) | (np.isnan(full) & np.isnan(columns.matrix))
    assert {features.FEATURE_NAMES[j] for j in np.flatnonzero(~alike.all(axis=0))} <= filled
    assert np.isnan(columns.matrix[:, [features.FEATURE_INDEX[n] for n in filled]]).all()
    assert len(filled) > 60


@settings(max_examples=15, deadline=None)
@given(
    cut=st.integers(min_value=1, max_value=39), extra_label_hours=st.floats(min_value=0.0, max_value=500.0)
)
def test_property_a_columnar_row_never_depends_on_what_comes_after_it(
    cut: int, extra_label_hours: float
) -> None:
    history = simulate(SimulationConfig(days=2, seed=11, orders_per_day=20, fraud_rate=0.2))
    orders = sorted((Order.model_validate(s.order) for s in history), key=lambda o: o.created_at)[:40]
    labels = [Label(o.order_id, True, o.created_at + timedelta(hours=1)) for o in orders[::5]]
    prefix = replay_columnar(orders[:cut], labels, workers=1).matrix
    cut_time = orders[cut - 1].created_at
    later = Label(orders[0].order_id, True, cut_time + timedelta(hours=extra_label_hours, seconds=1))
    assert same(replay_columnar(orders, [*labels, later], workers=1).matrix[:cut], prefix)


def test_running_sums_add_left_to_right_like_a_counter() -> None:
    # Values whose sum depends on the order of additions (a pairwise sum would differ)
    rng = np.random.default_rng(3)
    values = rng.choice([1e16, 1.0, -1e16, 0.1, 3.3e7, 0.01], size=5000)
    lengths = rng.integers(1, 700, size=40)
    lengths = lengths[np.cumsum(lengths) <= len(values)]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    got = _segment_cumsum(values, starts, lengths)
    for start, length in zip(starts, lengths, strict=True):
        total = 0.0
        for k in range(start, start + length):
            total = total + float(values[k])
            assert got[k] == total


def test_an_unsorted_stream_or_a_too_late_arrival_is_refused() -> None:
    orders = simulated(days=1, per_day=20)[0]
    timed = sorted(orders, key=lambda o: o.created_at)
    with pytest.raises(OutOfOrderError):
        replay_columnar(iter([timed[1], timed[0]]), workers=1)
    late = timed[0].model_copy(update={"created_at": timed[-1].created_at - timedelta(hours=3)})
    with pytest.raises(OutOfOrderError):
        replay_columnar([timed[-1], late], arrival=True, workers=1)


def test_given_more_linked_buyers_than_the_sketch_holds_then_both_replays_cap_alike() -> None:
    # Given a pickup address receiving for 70 distinct buyers over two months, some buyers twice
    orders = [
        Order.model_validate(
            {
                "order_id": f"p{i}",
                "created_at": T0 + timedelta(hours=17 * i),
                "buyer": {"id": f"b{i % 61}"},
                "seller": {"id": "s"},
                "amount": 10.0,
                "currency": "RUB",
                "shipping": {"country": "RU", "region": "RU-MOW", "city": "M", "address": "pickup 1"},
            }
        )
        for i in range(70)
    ]
    expected = replay(orders).matrix[:, features.FEATURE_INDEX["address_distinct_buyers_2mo"]]
    got = replay_columnar(orders, workers=1).matrix[:, features.FEATURE_INDEX["address_distinct_buyers_2mo"]]
    assert same(got, expected)
    assert expected.max() == agg.LINK_CAP  # the cap is reached, and then held

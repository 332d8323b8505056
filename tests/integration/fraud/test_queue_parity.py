"""Train/serve parity on every serving path: orders delivered late, shuffled and twice.

Orders reach ScoreOrderFunction one by one over the HTTP API and OrderEventsFunction in SQS
batches whose records come in any order; a batch may hold orders placed after orders of a later
batch, and a record may be delivered again. Whatever the arrival order, every order's served
feature vector is what the training replay computes for the sequence serving stored the orders
in (`replay(serving_sequence(deliveries), arrival=True)`); when no order arrives after a newer
one of an earlier batch, that is the plain point-in-time replay by ``created_at``.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dozor.domain.contracts import Order
from dozor.domain.fraud.features import FEATURE_NAMES
from dozor.domain.fraud.scoring import OrderScoring
from dozor.handlers.fraud import order_events, score_order
from dozor_training.fraud.replay import replay, serving_sequence
from dozor_training.fraud.simulator import SimulationConfig, simulate
from tests.helpers.aws_stack import Stack, api_event, make_order, sqs_event


@pytest.fixture
def served_rows(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, np.ndarray]]:
    """The feature row each handler computed, by order id, as it went to the model."""
    rows: dict[str, np.ndarray] = {}
    original = OrderScoring.prepare

    def spy(self: OrderScoring, orders: list[Order], **options: Any) -> Any:
        scored = original(self, orders, **options)
        for s in scored:
            if s.features is not None:
                assert s.order.order_id not in rows, "an order was scored twice"
                rows[s.order.order_id] = s.features.copy()
        return scored

    monkeypatch.setattr(OrderScoring, "prepare", spy)
    yield rows


@dataclass(frozen=True)
class Delivery:
    """One invocation: an API call (one order) or an SQS batch, records in delivery order."""

    orders: tuple[dict[str, Any], ...]
    http: bool

    def __repr__(self) -> str:  # what a falsifying example shows: ids and times, not payloads
        shown = ", ".join(f"{o['order_id'].split('-')[-1]}@{o['created_at'][5:16]}" for o in self.orders)
        return f"{'HTTP' if self.http else 'SQS'}[{shown}]"


def deliver(stack: Stack, delivery: Delivery) -> None:
    if delivery.http:
        (order,) = delivery.orders
        response = score_order.lambda_handler(api_event("POST", "/v1/orders/score", order), stack.context)
        assert response["statusCode"] == 200, response["body"]
    else:
        event = sqs_event([json.dumps(o) for o in delivery.orders])
        assert order_events.lambda_handler(event, stack.context) == {"batchItemFailures": []}


def assert_served_as_replayed(
    served: dict[str, np.ndarray], deliveries: list[Delivery], *, by_created_at: bool = False
) -> None:
    batches = [[Order.model_validate(o) for o in d.orders] for d in deliveries]
    if by_created_at:
        unique = {o.order_id: o for batch in batches for o in batch}
        replayed = replay(list(unique.values()))
    else:
        replayed = replay(serving_sequence(batches), arrival=True)
    assert sorted(served) == sorted(replayed.order_ids)
    rows = np.stack([served[oid] for oid in replayed.order_ids])
    mismatches = ~np.isclose(rows, replayed.matrix, rtol=1e-6, equal_nan=True)
    differing = [
        f"{replayed.order_ids[i]} {FEATURE_NAMES[j]}: served {rows[i, j]}, replay {replayed.matrix[i, j]}"
        for i, j in zip(*np.nonzero(mismatches), strict=True)
    ]
    assert not differing, "\n".join(differing[:10])


def order_for(
    prefix: str, i: int, minute: int, buyer: int, card: int, seller: int, ip: int
) -> dict[str, Any]:
    """An order among a few buyers, cards, sellers and ips of one example (``prefix`` keeps
    examples apart in the shared tables)."""
    order = make_order(
        f"{prefix}-o{i}",
        buyer_id=f"{prefix}-b{buyer}",
        minutes_later=minute,
        card=f"{prefix}-c{card}",
        amount=[990.0, 8990.0, 45000.0][(i + buyer) % 3],
    )
    order["seller"]["id"] = f"{prefix}-s{seller}"
    order["ip"] = f"10.{i % 2}.{ip}.{int(prefix[:2], 16)}-{prefix}"
    order["shipping"]["address"] = f"ul. Lenina {buyer}, {prefix}"
    return order


@st.composite
def arrivals(draw: st.DrawFn) -> list[Delivery]:
    """Orders over a day and a half, each delivered up to two hours late, in batches of 1-10
    (a batch of one over HTTP or SQS), records shuffled, some delivered again later."""
    prefix = uuid.uuid4().hex[:8]
    n = draw(st.integers(6, 14))
    orders = []
    for i in range(n):
        minute = draw(st.integers(0, 36 * 60))
        buyer, card, seller, ip = (draw(st.integers(0, k)) for k in (2, 2, 1, 1))
        delay = draw(st.integers(0, 119))
        orders.append((minute + delay, order_for(prefix, i, minute, buyer, card, seller, ip)))
    arriving = [o for _, o in sorted(orders, key=lambda pair: pair[0])]
    for again in draw(st.lists(st.integers(0, n - 1), max_size=3)):
        arriving.insert(draw(st.integers(again + 1, len(arriving))), arriving[again])
    rng = random.Random(draw(st.integers(0, 2**32)))
    deliveries = []
    while arriving:
        size = draw(st.integers(1, min(10, len(arriving))))
        batch, arriving = arriving[:size], arriving[size:]
        rng.shuffle(batch)  # SQS keeps no order inside a batch either
        deliveries.append(Delivery(tuple(batch), http=size == 1 and draw(st.booleans())))
    return deliveries


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(deliveries=arrivals())
def test_any_arrival_order_serves_the_features_the_replay_computes(
    stack: Stack, served_rows: dict[str, np.ndarray], deliveries: list[Delivery]
) -> None:
    # Given orders delivered late, shuffled and twice, over HTTP and SQS (a fresh set of
    # entities each example: the tables are shared)
    served_rows.clear()
    # When the handlers score them as they arrive
    for delivery in deliveries:
        deliver(stack, delivery)
    # Then every order was served the features the replay of that arrival sequence computes
    assert_served_as_replayed(served_rows, deliveries)


def test_batches_shuffled_inside_serve_the_point_in_time_features(
    stack: Stack, served_rows: dict[str, np.ndarray]
) -> None:
    # Given 90 simulated orders in batches of 10, each batch's records shuffled, and a batch
    # delivered twice (the repro: seller_age_days was served 0.733 for a replay's 0.873)
    history = simulate(SimulationConfig(days=2, seed=5, orders_per_day=45))
    payloads = sorted((s.order for s in history), key=lambda o: str(Order.model_validate(o).created_at))
    rng = random.Random(7)
    deliveries = []
    for start in range(0, len(payloads), 10):
        batch = payloads[start : start + 10]
        rng.shuffle(batch)
        deliveries.append(Delivery(tuple(batch), http=False))
    deliveries.insert(3, deliveries[1])
    # When OrderEventsFunction scores them
    for delivery in deliveries:
        deliver(stack, delivery)
    # Then the served features are the replay's in time order, as training computes them
    assert_served_as_replayed(served_rows, deliveries, by_created_at=True)
    assert len(served_rows) == len(payloads)


def test_a_late_order_is_not_seen_by_orders_scored_before_it(
    stack: Stack, served_rows: dict[str, np.ndarray]
) -> None:
    # Given a seller's 09:30 order delivered and scored before its 09:00 order arrives
    early, late = (make_order(f"o-late-{m}", minutes_later=m) for m in (0, 30))
    for order in (late, early):
        deliver(stack, Delivery((order,), http=False))
    # Then the 09:30 order saw no history; the late 09:00 order sees the 09:30 one (by arrival)
    # where their buckets overlap, today's hour and the lifetime total, but not in the last
    # hour's 5-minute buckets, and its age is 0 (it is the first seen)
    i = {name: k for k, name in enumerate(FEATURE_NAMES)}
    assert served_rows["o-late-30"][i["seller_lifetime_orders"]] == 0
    late_seen = served_rows["o-late-0"]
    assert (late_seen[i["seller_lifetime_orders"]], late_seen[i["seller_orders_24h"]]) == (1, 1)
    assert late_seen[i["seller_orders_1h"]] == 0
    assert late_seen[i["seller_age_days"]] == 0
    # And the next order measures the seller's age from 09:00, the earliest order, not the first stored
    nxt = make_order("o-late-next", minutes_later=24 * 60)
    deliver(stack, Delivery((nxt,), http=True))
    assert served_rows["o-late-next"][i["seller_age_days"]] == pytest.approx(1.0)
    assert (
        stack.feature_item("seller#s-shenzhen-42", "P")["first_seen"]
        == Order.model_validate(early).created_at.timestamp()
    )
    assert_served_as_replayed(
        served_rows,
        [Delivery((late,), http=False), Delivery((early,), http=False), Delivery((nxt,), http=True)],
    )

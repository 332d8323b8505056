"""OrderScoring with its ports held in memory: batching, repeats and replays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dozor.adapters.memory import CollectingReviewQueue, InMemoryDecisionStore
from dozor.domain.contracts import DecisionKind
from dozor.domain.fraud.features import FEATURE_INDEX
from dozor.domain.fraud.model import FraudModel
from dozor.domain.fraud.scoring import OrderScoring
from dozor.domain.privacy import PiiHasher
from tests.helpers.orders import build_order

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def model() -> FraudModel:
    return FraudModel.load()


def _service(model: FraudModel) -> tuple[OrderScoring, InMemoryDecisionStore, CollectingReviewQueue]:
    store, queue = InMemoryDecisionStore(), CollectingReviewQueue()
    return OrderScoring(store, queue, model, PiiHasher(b"k")), store, queue


def test_given_an_order_twice_in_one_batch_then_it_is_stored_counted_and_reviewed_once(model) -> None:
    scoring, store, queue = _service(model)
    store.aggregates.items[("buyer#b-watched", "P")] = {"list": "review"}
    order = build_order("o-1", T0, buyer="b-watched")
    results = [scoring.commit(s) for s in scoring.prepare([order, order])]
    assert [r.decision for r in results] == [DecisionKind.REVIEW, DecisionKind.REVIEW]
    assert results[0] == results[1]
    assert list(store.decisions) == ["o-1"]
    assert store.aggregates.items[("buyer#b-watched", "P")]["orders"] == 1
    assert [d.order_id for d, _ in queue.submitted] == ["o-1"]


def test_given_a_batch_out_of_time_order_then_each_order_sees_only_earlier_ones(model) -> None:
    scoring, _, _ = _service(model)
    orders = [build_order(f"o-{i}", T0 + timedelta(minutes=i), card="c-1") for i in range(3)]
    scored = scoring.prepare(list(reversed(orders)))
    seen = {s.order.order_id: s.features for s in scored}

    card_1h = FEATURE_INDEX["card_orders_1h"]
    assert [float(seen[f"o-{i}"][card_1h]) for i in range(3)] == [0.0, 1.0, 2.0]


def test_given_a_stored_decision_then_a_replay_returns_it_and_writes_nothing(model) -> None:
    scoring, store, _ = _service(model)
    first = scoring.score(build_order("o-1", T0))
    before = {k: dict(v) for k, v in store.aggregates.items.items()}
    again = scoring.score(build_order("o-1", T0))
    assert again == first
    assert store.aggregates.items == before

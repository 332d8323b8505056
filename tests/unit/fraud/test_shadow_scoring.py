"""OrderScoring with a shadow model and swapped models, its ports in memory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from dozor.adapters.memory import CollectingReviewQueue, InMemoryDecisionStore
from dozor.domain.contracts import DecisionKind
from dozor.domain.fraud.model import PACKAGED_MODEL_DIR, FraudModel
from dozor.domain.fraud.scoring import OrderScoring
from dozor.domain.privacy import PiiHasher
from tests.helpers.orders import build_order

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def variant(version: str, **changes: object) -> FraudModel:
    metadata = json.loads((PACKAGED_MODEL_DIR / "metadata.json").read_text())
    metadata.update(version=version, **changes)
    model = FraudModel.load()
    return FraudModel(model.trees, metadata)


@pytest.fixture
def orders() -> list:
    return [
        build_order(f"o-{i}", T0 + timedelta(minutes=i), card="c-1", email=f"buyer{i}@mail.ru")
        for i in range(3)
    ]


def test_given_a_shadow_then_decisions_are_the_active_models_and_each_order_has_a_verdict(orders) -> None:
    active = FraudModel.load()
    shadow = variant("fraud-shadow", calibration={"x": [0.0, 1.0], "y": [0.95, 0.95]})
    plain = OrderScoring(InMemoryDecisionStore(), CollectingReviewQueue(), active, PiiHasher(b"k"))
    watched = OrderScoring(InMemoryDecisionStore(), CollectingReviewQueue(), active, PiiHasher(b"k"))
    watched.use_models(active, shadow)

    without = plain.prepare(orders)
    with_shadow = watched.prepare(orders)

    def same(scored: list) -> list[dict]:
        return [s.decision.model_dump(exclude={"decided_at"}) for s in scored]

    assert same(with_shadow) == same(without)
    assert all(s.shadow is None for s in without)
    verdicts = [s.shadow for s in with_shadow]
    assert all(v is not None and v.model_version == "fraud-shadow" for v in verdicts)
    assert all(v.score == pytest.approx(0.95) and v.decision is DecisionKind.DECLINE for v in verdicts)


def test_given_new_models_then_the_next_batch_is_decided_and_labelled_by_them(orders) -> None:
    store = InMemoryDecisionStore()
    scoring = OrderScoring(store, CollectingReviewQueue(), FraudModel.load(), PiiHasher(b"k"))
    first = scoring.score(orders[0])
    scoring.use_models(variant("fraud-next"))
    second = scoring.score(orders[1])

    assert first.model_version != "fraud-next" and second.model_version == "fraud-next"
    # The stored order is pseudonymised: the store never sees the raw email or card
    stored = store.orders["o-1"]
    assert stored.buyer.email != "buyer1@mail.ru" and stored.buyer.email.endswith("@mail.ru")
    assert stored.payment.card_fingerprint != "c-1"

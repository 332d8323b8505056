"""The fast scoring path decides exactly as the plain one did (`tests/helpers/reference_scoring`).

The scoring path was made fast (features into a matrix, one walk of the trees per batch, sentences
and rules resolved once per feature, cached pseudonyms). This holds it to the straightforward
version it replaced, scored by xgboost itself: for the same simulated orders, in the same store,
every feature row, decision (score, rules, reasons with their values and sentences), pseudonymised
order and fingerprint is the same, one order at a time and in batches of ten.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pytest
import xgboost as xgb

from dozor.adapters.memory import CollectingReviewQueue, InMemoryDecisionStore
from dozor.domain import aggregates as agg
from dozor.domain.contracts import Decision, Order
from dozor.domain.fraud import features
from dozor.domain.fraud.model import PACKAGED_MODEL_DIR, FraudModel
from dozor.domain.fraud.rules import RuleHit
from dozor.domain.fraud.scoring import OrderScoring, fingerprint
from dozor.domain.privacy import PiiHasher
from dozor_training.fraud.simulator import SimulationConfig, simulate
from tests.helpers import reference_scoring as plain

NOW = datetime(2026, 12, 1, tzinfo=UTC)
KEY = b"identity"


@pytest.fixture(scope="module")
def orders() -> list[Order]:
    history = simulate(SimulationConfig(days=3, seed=7, orders_per_day=300))
    return [Order.model_validate(s.order) for s in history]


@pytest.fixture(scope="module")
def booster() -> xgb.Booster:
    booster = xgb.Booster(model_file=str(PACKAGED_MODEL_DIR / "model.ubj"))
    booster.set_param({"nthread": 1})
    booster.feature_names = None
    return booster


class PlainHasher(PiiHasher):
    """One HMAC per call, as the hasher was before it cached."""

    def __call__(self, kind: str, value: str) -> str:
        return plain.pii_hash(KEY, kind, value)


def plain_rows(order: Order, store: InMemoryDecisionStore) -> tuple[np.ndarray, list[RuleHit]]:
    """The plain path's features and rule hits for ``order`` against what ``store`` holds now."""
    entities = features.identify(order, PlainHasher(KEY))
    _, snapshot = store.load([order.order_id], agg.keys_for(entities.values(), order.created_at))
    view = features.view(order, entities, snapshot)
    row = plain.compute(view)
    return row, plain.evaluate_rules(view, row)


def plain_decisions(
    orders: Sequence[Order],
    rows: np.ndarray,
    hits: Sequence[list[RuleHit]],
    model: FraudModel,
    booster: xgb.Booster,
) -> list[Decision]:
    """The plain path's decisions given its features: xgboost's scores and approx contributions."""
    scores = model.calibrate(np.asarray(booster.inplace_predict(rows), dtype=np.float64))
    matrix = xgb.DMatrix(rows, missing=np.nan)
    contributions = np.asarray(booster.predict(matrix, pred_contribs=True, approx_contribs=True), np.float64)
    return [
        plain.decide(
            order_id=order.order_id,
            score=float(score),
            hits=found,
            reasons=plain.explain(row, contribution[:-1]),
            thresholds=model.thresholds,
            model_version=model.version,
            degraded=False,
            decided_at=NOW,
        )
        for order, row, found, score, contribution in zip(
            orders, rows, hits, scores, contributions, strict=True
        )
    ]


def batched_decisions(orders: Sequence[Order], batch: int) -> list[Decision]:
    scoring = OrderScoring(
        InMemoryDecisionStore(), CollectingReviewQueue(), FraudModel.load(), PiiHasher(KEY), lambda: NOW
    )
    decisions: list[Decision] = []
    for start in range(0, len(orders), batch):
        for scored in scoring.prepare(list(orders[start : start + batch]), within_budget=False):
            decisions.append(scoring.commit(scored))
    return decisions


def test_the_fast_path_decides_every_order_as_the_plain_path_alone_and_in_batches(
    orders: list[Order], booster: xgb.Booster
) -> None:
    model = FraudModel.load()
    store = InMemoryDecisionStore()
    scoring = OrderScoring(store, CollectingReviewQueue(), model, PiiHasher(KEY), lambda: NOW)
    rows, hits, single = [], [], []
    for order in orders:
        row, found = plain_rows(order, store)
        rows.append(row)
        hits.append(found)
        (scored,) = scoring.prepare([order], within_budget=False)
        assert scored.features is not None
        np.testing.assert_array_equal(scored.features, row, err_msg=order.order_id)
        stored = plain.pseudonymise(order, KEY)
        assert scored.stored_order == stored, order.order_id
        assert scored.fingerprint == fingerprint(stored)
        single.append(scoring.commit(scored))
    expected = plain_decisions(orders, np.vstack(rows), hits, model, booster)
    assert [d.model_dump() for d in single] == [d.model_dump() for d in expected]
    # The sample reaches every outcome and the rules, so the comparison covers them.
    assert {d.decision for d in single} == {"APPROVE", "REVIEW", "DECLINE"}
    assert sum(bool(d.rules) for d in single) >= 5
    assert len({r.feature for d in single for r in d.reasons}) >= 20
    grouped = batched_decisions(orders, batch=10)
    assert [d.model_dump() for d in grouped] == [d.model_dump() for d in single]

"""The NumPy evaluator decides as the xgboost booster did, and a batch as the orders one by one.

The same simulated orders go through three scoring services, each with its own in-memory store:
one scored by the packaged booster through xgboost (what serving did before the evaluator), one
by the evaluator an order at a time, one by the evaluator in batches of ten. Every decision, its
score, rules and reasons (features, contributions, sentences) must be the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pytest
import xgboost as xgb

from dozor.adapters.memory import CollectingReviewQueue, InMemoryDecisionStore
from dozor.domain.contracts import Decision, Order
from dozor.domain.fraud.model import PACKAGED_MODEL_DIR, FraudModel
from dozor.domain.fraud.scoring import OrderScoring
from dozor.domain.privacy import PiiHasher
from dozor_training.fraud.simulator import SimulationConfig, simulate

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class BoosterModel(FraudModel):
    """The packaged model scored by xgboost itself: inplace_predict and approx_contribs."""

    def __init__(self) -> None:
        model = FraudModel.load()
        super().__init__(model.trees, model.metadata)
        self.booster = xgb.Booster(model_file=str(PACKAGED_MODEL_DIR / "model.ubj"))
        self.booster.set_param({"nthread": 1})
        self.booster.feature_names = None

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.calibrate(np.asarray(self.booster.inplace_predict(rows), dtype=np.float64))

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        matrix = xgb.DMatrix(rows, missing=np.nan)
        contribs = self.booster.predict(matrix, pred_contribs=True, approx_contribs=True)
        return np.asarray(contribs, dtype=np.float64)[:, :-1]

    def scores_and_contributions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.scores(rows), self.contributions(rows)


@pytest.fixture(scope="module")
def orders() -> list[Order]:
    history = simulate(SimulationConfig(days=3, seed=21, orders_per_day=250))
    return [Order.model_validate(s.order) for s in history]


def decide_all(model: FraudModel, orders: Sequence[Order], batch: int) -> list[Decision]:
    store, queue = InMemoryDecisionStore(), CollectingReviewQueue()
    scoring = OrderScoring(store, queue, model, PiiHasher(b"k"), lambda: NOW)
    decisions: list[Decision] = []
    for start in range(0, len(orders), batch):
        # Outside the latency budget: this compares decisions, and a loaded machine must not time out
        for scored in scoring.prepare(list(orders[start : start + batch]), within_budget=False):
            decisions.append(scoring.commit(scored))
    return decisions


def test_the_evaluator_and_batches_decide_exactly_as_the_booster_one_by_one(orders: list[Order]) -> None:
    reference = decide_all(BoosterModel(), orders, batch=1)
    single = decide_all(FraudModel.load(), orders, batch=1)
    batched = decide_all(FraudModel.load(), orders, batch=10)
    assert len(reference) == len(single) == len(batched) == len(orders)
    kinds = {d.decision for d in reference}
    assert len(kinds) >= 2, kinds  # the sample reaches more than one outcome
    for old, new, grouped in zip(reference, single, batched, strict=True):
        assert new.model_dump() == old.model_dump(), old.order_id
        assert grouped.model_dump() == old.model_dump(), old.order_id

"""The Spark engine computes the local engine's matrix, and its Spark-fitted model scores alike.

PySpark in local mode (``local[2]``): one session for the module, a small simulated history.
Features must be equal bit for bit; the model fitted by xgboost's Spark estimator (two workers,
rows split between them) is not the same booster as the one-process fit, so its test metrics
must match within a stated tolerance.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from dozor.domain.contracts import Order
from dozor.domain.feedback import Label, Loss
from dozor.domain.fraud.features import FEATURE_NAMES
from dozor_training.fitting import fit_booster
from dozor_training.fraud.columnar import replay_columnar
from dozor_training.fraud.simulator import SimulationConfig, simulate
from dozor_training.fraud.train import (
    PARAMS,
    TrainingConfig,
    choose_periods,
    label_vectors,
    typical_label_delay_days,
)

pyspark = pytest.importorskip("pyspark")

from dozor_training.fraud.spark_engine import replay_spark, session, spark_fit  # noqa: E402

# How far the Spark-fitted model's test AP and ROC AUC may be from the local fit's. Two workers
# build histograms over their own halves and sync them, so splits (and so trees) differ slightly.
METRIC_TOLERANCE = 0.05
ROUNDS = 60  # enough for this history's model; fewer rounds keep the test short


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    s = session("local[2]", "dozor-test", partitions=2)
    yield s
    s.stop()


History = tuple[list[Order], list[Label], list[Loss]]


@pytest.fixture(scope="module")
def history() -> History:
    sim = simulate(SimulationConfig(days=21, seed=3, orders_per_day=120, fraud_rate=0.08))
    orders = [Order.model_validate(s.order) for s in sim]
    labels = [Label(s.order["order_id"], s.is_fraud, s.label_reported_at) for s in sim if s.label_reported_at]
    losses = [Loss(o.order_id, o.created_at + timedelta(hours=5)) for o in orders[::23]]
    return orders, labels, losses


def test_the_spark_engine_computes_the_local_engines_features(spark: object, history: History) -> None:
    orders, labels, losses = history
    local = replay_columnar(orders, labels, losses, workers=1)
    on_spark = replay_spark(spark, orders, labels, losses, partitions=2)  # type: ignore[arg-type]
    assert on_spark.order_ids == local.order_ids
    assert np.array_equal(on_spark.matrix, local.matrix, equal_nan=True)
    assert on_spark.rule_hits == local.rule_hits


def test_the_spark_fitted_model_scores_the_test_period_as_the_local_fit_does(
    spark: object, history: History
) -> None:
    orders, labels, _ = history
    replayed = replay_columnar(orders, labels, workers=1)
    times = replayed.created_at
    delay = typical_label_delay_days(dict(zip(replayed.order_ids, times, strict=True)), labels)
    periods = choose_periods(times, delay, TrainingConfig())
    train, cal, test = periods.masks(times)
    known, final = label_vectors(replayed.order_ids, labels, periods.label_cutoff)
    x = replayed.matrix
    metrics = {}
    for name, fit in (("local", fit_booster), ("spark", spark_fit(spark, num_workers=2))):  # type: ignore[arg-type]
        booster = fit(PARAMS, FEATURE_NAMES, x[train], known[train], x[cal], known[cal], max_rounds=ROUNDS)
        scores = booster.inplace_predict(x[test])
        metrics[name] = (average_precision_score(final[test], scores), roc_auc_score(final[test], scores))
    assert metrics["local"][0] > 0.3  # a model worth comparing
    assert metrics["spark"] == pytest.approx(metrics["local"], abs=METRIC_TOLERANCE)

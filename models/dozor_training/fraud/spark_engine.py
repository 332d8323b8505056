"""The training replay and fit on Apache Spark, for histories that outgrow one machine.

`dozor train --engine spark` computes the same matrix as the local engine: the orders go through
the serving code once (`columnar.order_columns`: entities and order-only features), then each
entity kind's aggregates are computed as Spark tasks, one per entity partition
(``groupBy(partition).cogroup(...).applyInPandas``), each calling the very functions the local
engine calls on the whole kind (`columnar_kernel.summarise` and `feature_columns`). That works
because the kernel takes any set of *whole* entities: an entity's orders and labels all land in
one partition. The booster is fitted by xgboost's Spark estimator (`SparkXGBClassifier`) on the
same train and calibration rows, with the same parameters and early stopping; calibration,
thresholds, evaluation and the artifact are the local trainer's.

PySpark and pandas are training dependencies only (import-linter keeps them out of the Lambda
package). How to run this on EMR Serverless: ``infra/spark/README.md``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.types import ArrayType, DoubleType, LongType, StructField, StructType

from dozor.domain.feedback import Label, Loss
from dozor.domain.fraud import features
from dozor.domain.privacy import PiiHasher
from dozor_training.fitting import EARLY_STOPPING_ROUNDS, MAX_ROUNDS
from dozor_training.fraud.columnar import KINDS, Orders, kind_labels, kind_orders, order_columns
from dozor_training.fraud.columnar_kernel import (
    EntityLabels,
    EntityOrders,
    feature_columns,
    no_labels,
    summarise,
)
from dozor_training.fraud.replay import ReplayResult
from dozor_training.fraud.spark_tasks import entity_partition

PARTITIONS = 8  # entity partitions per kind (tasks); a cluster would use a few per core


def session(master: str = "local[2]", app: str = "dozor-train", partitions: int = PARTITIONS) -> SparkSession:
    """A Spark session: ``master`` here, or the cluster's under spark-submit (EMR, Glue)."""
    # Executors must run this interpreter (it has pyarrow and the dozor packages), not python3.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # set by spark-submit, which names the master
        builder = builder.master(master)
    return (
        builder.config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def replay_spark(
    spark: SparkSession,
    orders: Orders,
    labels: Sequence[Label] = (),
    losses: Sequence[Loss] = (),
    hasher: PiiHasher | None = None,
    partitions: int = PARTITIONS,
) -> ReplayResult:
    """`replay` (time order) with every entity kind's aggregates computed by Spark tasks: one job,
    one task per (kind, entity partition)."""
    columns = order_columns(orders, labels, losses, hasher)
    names: dict[str, list[str]] = {}
    order_frames, label_frames = [], []
    for number, kind in enumerate(KINDS):
        rows = np.flatnonzero(columns.codes[kind] >= 0)
        if len(rows):
            orders_of_kind = kind_orders(columns, kind, rows)
            names[kind] = _column_names(kind, orders_of_kind)
            order_frames.append(_order_frame(number, orders_of_kind))
            label_frames.append(_label_frame(number, kind_labels(columns, kind)))
    if order_frames:
        key = [sf.col("kind"), (sf.col("entity") % partitions).alias("part")]
        left = _frame(spark, pd.concat(order_frames, ignore_index=True)).groupBy(*key)
        right = _frame(spark, pd.concat(label_frames, ignore_index=True)).groupBy(*key)
        schema = StructType(
            [
                StructField("kind", LongType()),
                StructField("seq", LongType()),
                StructField("values", ArrayType(DoubleType())),
            ]
        )
        task = partial(entity_partition, {KINDS.index(k): n for k, n in names.items()})  # by reference
        computed: pd.DataFrame = left.cogroup(right).applyInPandas(task, schema).toPandas()
        for number, part in computed.groupby("kind"):
            kind = KINDS[int(number)]
            at = [features.FEATURE_INDEX[n] for n in names[kind]]
            columns.matrix[np.ix_(part["seq"].to_numpy(), at)] = np.stack(part["values"].to_numpy())
    return columns.result()


_LINK_SLOTS = max(len(v) for v in features.LINKS.values())  # link columns per row, -1 unused


def _order_frame(number: int, orders: EntityOrders) -> pd.DataFrame:
    links = list(orders.links.values())
    frame = pd.DataFrame(
        {
            "kind": np.full(len(orders.seq), number, dtype=np.int64),
            "entity": orders.entity,
            "seq": orders.seq,
            "epoch": orders.epoch,
            "created": orders.created,
            "amount": orders.amount,
        }
    )
    for slot in range(_LINK_SLOTS):
        frame[f"link{slot}"] = links[slot] if slot < len(links) else -1
    return frame


def _label_frame(number: int, labels: EntityLabels) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": np.full(len(labels.entity), number, dtype=np.int64),
            "entity": labels.entity,
            "reported": labels.reported,
            "visible_from": labels.visible_from,
            "fraud": labels.fraud.astype(np.int64),
        }
    )


def _frame(spark: SparkSession, frame: pd.DataFrame) -> DataFrame:
    if len(frame):
        return spark.createDataFrame(frame)
    schema = StructType([StructField(c, DoubleType() if c == "reported" else LongType()) for c in frame])
    return spark.createDataFrame([], schema)


def _column_names(kind: str, orders: EntityOrders) -> list[str]:
    """The names `feature_columns` returns for a kind, in its order (computed on one order)."""
    one = EntityOrders(
        orders.entity[:1],
        orders.seq[:1],
        orders.epoch[:1],
        orders.created[:1],
        orders.amount[:1],
        {k: v[:1] for k, v in orders.links.items()},
    )
    return list(feature_columns(kind, one, summarise(one, no_labels())))


# --- fitting ----------------------------------------------------------------------------------


def spark_fit(spark: SparkSession, num_workers: int = 2) -> Callable[..., xgb.Booster]:
    """A `fitting.fit_booster` that fits with xgboost's Spark estimator (same rows, params, stopping)."""
    return partial(_fit_on_spark, spark, num_workers)


def _fit_on_spark(
    spark: SparkSession,
    num_workers: int,
    params: Mapping[str, Any],
    feature_names: Sequence[str],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    max_rounds: int = MAX_ROUNDS,
) -> xgb.Booster:
    # Imported here, not at the top: Spark's Python workers import this module to run the entity
    # tasks, and xgboost.spark pulls pyspark.ml and scikit-learn into every one of them.
    from xgboost.spark import SparkXGBClassifier  # noqa: PLC0415

    names = list(feature_names)
    frame = pd.DataFrame(np.vstack([x_train, x_val]).astype(np.float64), columns=names)
    frame["label"] = np.concatenate([y_train, y_val]).astype(np.float64)
    frame["validation"] = np.concatenate([np.zeros(len(y_train), bool), np.ones(len(y_val), bool)])
    estimator = SparkXGBClassifier(
        features_col=names,
        label_col="label",
        validation_indicator_col="validation",
        num_workers=num_workers,
        n_estimators=max_rounds,
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        **_spark_params(params),
    )
    model = estimator.fit(spark.createDataFrame(frame).repartition(num_workers))
    booster: xgb.Booster = model.get_booster()
    best = booster.attr("best_iteration")
    booster = booster[: int(best) + 1] if best is not None else booster
    booster.feature_names = names
    return booster


def _spark_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """`train.PARAMS` in the estimator's names (threads are Spark's ``spark.task.cpus``)."""
    renamed = {"eta": "learning_rate", "lambda": "reg_lambda", "seed": "random_state"}
    dropped = {"nthread", "objective"}  # the classifier sets its own objective
    return {renamed.get(k, k): v for k, v in params.items() if k not in dropped}

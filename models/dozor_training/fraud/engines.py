"""Where `dozor train` replays and fits: on this machine, or on Apache Spark (``--engine``).

Both engines compute the same feature matrix (the columnar replay; on Spark its entity kernels
run as Spark tasks) and hand it to the same trainer; they differ in who fits the booster:
xgboost here, xgboost's Spark estimator there. Spark is imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xgboost as xgb

from dozor_training.fitting import fit_booster
from dozor_training.fraud.columnar import replay_columnar
from dozor_training.fraud.replay import ReplayResult

ENGINES = ("local", "spark")


@dataclass(frozen=True)
class Engine:
    name: str
    replay: Callable[..., ReplayResult]  # as `replay_columnar(orders, labels, losses)`
    fit: Callable[..., xgb.Booster]  # as `fitting.fit_booster`


def engine(name: str) -> Engine:
    """The named engine; ``spark`` starts (or joins) a Spark session."""
    if name == "local":
        return Engine("local", replay_columnar, fit_booster)
    if name == "spark":
        from dozor_training.fraud import spark_engine  # noqa: PLC0415 (pyspark only when asked for)

        spark = spark_engine.session()

        def replay(*args: Any, **kwargs: Any) -> ReplayResult:
            return spark_engine.replay_spark(spark, *args, **kwargs)

        return Engine("spark", replay, spark_engine.spark_fit(spark))
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")

"""Benchmarks, as ratios against a floor measured in the same run (`make bench`).

1. Scoring path: validate + features + predict + explain + rules + decide for one order, no AWS
   I/O, against a bare ``booster.inplace_predict`` on the same feature row.
2. The same path for a batch of 10 (the order-events function), per order.
3. Training replay: feature rows per order through the in-memory store.

CPU time per call (thread time), medians over interleaved runs so machine noise hits both sides.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import xgboost as xgb

from dozor.adapters.memory import CollectingReviewQueue, InMemoryDecisionStore
from dozor.domain.contracts import Order
from dozor.domain.fraud.model import PACKAGED_MODEL_DIR, FraudModel
from dozor.domain.fraud.scoring import OrderScoring, ScoredOrder
from dozor.domain.privacy import PiiHasher
from dozor_training.fraud.replay import replay
from dozor_training.fraud.simulator import SimulationConfig, simulate


def _cpu(fn: Callable[[], object]) -> float:
    start = time.thread_time_ns()
    fn()
    return (time.thread_time_ns() - start) / 1e3


def run(days: int, orders_per_day: int, samples: int) -> dict[str, float]:
    history = simulate(SimulationConfig(days=days, seed=11, orders_per_day=orders_per_day))
    payloads = [s.order for s in history]
    warm, probe = payloads[:-samples], payloads[-samples:]
    model = FraudModel.load()
    booster = xgb.Booster(model_file=str(PACKAGED_MODEL_DIR / "model.ubj"))
    booster.set_param({"nthread": 1})
    booster.feature_names = None
    store = InMemoryDecisionStore()
    scoring = OrderScoring(store, CollectingReviewQueue(), model, PiiHasher(b"bench"))
    for start in range(0, len(warm), 10):  # a realistic feature store behind the probe orders
        for scored in scoring.prepare([Order.model_validate(p) for p in warm[start : start + 10]]):
            scoring.commit(scored)

    def score(payloads: list[dict[str, Any]]) -> list[ScoredOrder]:
        return scoring.prepare([Order.model_validate(p) for p in payloads])

    path_us: list[float] = []
    floor_us: list[float] = []
    for payload in probe:
        outcome: list[ScoredOrder] = []
        path_us.append(_cpu(partial(lambda p, out: out.extend(score([p])), payload, outcome)))
        row = outcome[0].features
        assert row is not None
        floor_us.append(_cpu(partial(booster.inplace_predict, row.reshape(1, -1))))
    batch_us = [_cpu(partial(score, probe[i : i + 10])) / 10 for i in range(0, len(probe) - 9, 10)]

    replay_orders = [Order.model_validate(p) for p in payloads]
    started = time.process_time()
    replay(replay_orders)
    replay_us = (time.process_time() - started) / len(replay_orders) * 1e6

    path, floor = statistics.median(path_us), statistics.median(floor_us)
    return {
        "orders_in_store": len(warm),
        "samples": len(probe),
        "scoring_path_us_median": round(path, 1),
        "inplace_predict_us_median": round(floor, 1),
        "ratio_path_to_inplace_predict": round(path / floor, 2),
        "ratio_median_of_pairs": round(float(np.median(np.array(path_us) / np.array(floor_us))), 2),
        "batch10_path_us_per_order": round(statistics.median(batch_us), 1),
        "replay_us_per_order": round(replay_us, 1),
        "model_trees": model.trees.num_trees,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--orders-per-day", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(run(args.days, args.orders_per_day, args.samples), indent=2))


if __name__ == "__main__":
    main()

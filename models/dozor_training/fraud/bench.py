"""Benchmarks, as ratios against a floor measured in the same run (`make bench-scoring`).

1. Scoring path: validate + features + trees + explain + rules + decide for one order, no AWS
   I/O (the in-memory store), against a bare xgboost ``booster.inplace_predict`` on the same
   feature row (what serving called before the NumPy evaluator); and where the path goes, its steps
   timed one by one as `prepare` makes them (``path_steps_us``).
2. The same path for a batch of 10 (the order-events function), per order, against the single path.
3. Cold start: a fresh interpreter importing the ScoreOrder handler and loading the packaged model,
   against one importing boto3; both in Lambda's environment (powertools' X-Ray tracer on), and
   again with POWERTOOLS_TRACE_DISABLED, interleaved, medians.
4. DynamoDB writes of a scored order on moto: items and billed write units, typical and a top
   seller (`bench_writes`).
5. Training replay: feature rows per order through the in-memory store.

CPU time per call (thread time), medians over interleaved runs so machine noise hits both sides.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import xgboost as xgb

from dozor.adapters.memory import CollectingReviewQueue, InMemoryDecisionStore
from dozor.domain import aggregates as agg
from dozor.domain.contracts import Order
from dozor.domain.fraud import features, rules
from dozor.domain.fraud.decisions import decide
from dozor.domain.fraud.explanations import explain_rows
from dozor.domain.fraud.model import PACKAGED_MODEL_DIR, FraudModel
from dozor.domain.fraud.scoring import OrderScoring, ScoredOrder, fingerprint
from dozor.domain.privacy import PiiHasher, pseudonymise
from dozor_training.fraud import bench_writes
from dozor_training.fraud.replay import ExpiringAggregates, replay
from dozor_training.fraud.simulator import SimulationConfig, simulate

COLD_BASE = "import boto3"
COLD_HANDLER = (
    "import dozor.handlers.fraud.score_order\n"
    "from dozor.domain.fraud.model import FraudModel\n"
    "FraudModel.load()"
)
LAMBDA_ENV = {"LAMBDA_TASK_ROOT": "/var/task", "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}
TRAINING_ONLY = ("xgboost", "scipy", "sklearn", "matplotlib", "pyarrow", "moto")


def _cpu(fn: Callable[[], object]) -> float:
    start = time.thread_time_ns()
    fn()
    return (time.thread_time_ns() - start) / 1e3


def scoring_path(days: int, orders_per_day: int, samples: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    history = simulate(SimulationConfig(days=days, seed=11, orders_per_day=orders_per_day))
    payloads = [s.order for s in history]
    warm, probe = payloads[:-samples], payloads[-samples:]
    model = FraudModel.load()
    booster = xgb.Booster(model_file=str(PACKAGED_MODEL_DIR / "model.ubj"))
    booster.set_param({"nthread": 1})
    booster.feature_names = None
    store = InMemoryDecisionStore()
    scoring = OrderScoring(store, CollectingReviewQueue(), model, PiiHasher(b"bench"))
    # A realistic feature store behind the probe orders, its items as DynamoDB holds them: every
    # write there removes the buckets no window reads any more (as the training replay's store does).
    store.aggregates = kept = ExpiringAggregates()
    for start in range(0, len(warm), 10):
        arrivals = [Order.model_validate(p) for p in warm[start : start + 10]]
        for scored in scoring.prepare(arrivals, within_budget=False):
            scoring.commit(scored)
        kept.evict(max(o.created_at for o in arrivals).timestamp())

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

    steps = path_steps(store, model, probe)

    replay_orders = [Order.model_validate(p) for p in payloads]
    started = time.process_time()
    replay(replay_orders)
    replay_us = (time.process_time() - started) / len(replay_orders) * 1e6

    path, floor, batch = statistics.median(path_us), statistics.median(floor_us), statistics.median(batch_us)
    figures = {
        "orders_in_store": len(warm),
        "samples": len(probe),
        "scoring_path_us_median": round(path, 1),
        "inplace_predict_us_median": round(floor, 1),
        "ratio_path_to_inplace_predict": round(path / floor, 2),
        "ratio_median_of_pairs": round(float(np.median(np.array(path_us) / np.array(floor_us))), 2),
        "batch10_path_us_per_order": round(batch, 1),
        "batch10_ratio_to_single_path": round(batch / path, 2),
        "batch10_ratio_to_inplace_predict": round(batch / floor, 2),
        "replay_us_per_order": round(replay_us, 1),
        "model_trees": model.trees.num_trees,
        "path_steps_us": steps,
    }
    return figures, probe


def path_steps(
    store: InMemoryDecisionStore, model: FraudModel, probe: list[dict[str, Any]]
) -> dict[str, float]:
    """Where the single-order path goes: CPU medians over the probe orders of its steps, made as
    `prepare` makes them, against the same store (nothing is committed). Medians do not add up:
    the path's own figure is the one to compare with the floor."""
    steps: dict[str, list[float]] = {}
    for payload in probe:
        hasher = PiiHasher(b"bench")  # a cold hasher, as for an order never seen
        lap = [time.thread_time_ns()]

        def step(name: str, lap: list[int] = lap) -> None:
            now = time.thread_time_ns()
            steps.setdefault(name, []).append((now - lap[0]) / 1e3)
            lap[0] = time.thread_time_ns()

        order = Order.model_validate(payload)
        step("validate")
        fingerprint(pseudonymise(order, hasher))
        step("pseudonym_and_fingerprint")
        entities = features.identify(order, hasher)
        _, snapshot = store.load([order.order_id], set(agg.keys_for(entities.values(), order.created_at)))
        step("entities_keys_and_store_read")
        view = features.view(order, entities, snapshot)
        step("aggregates_view")
        agg.settled_minimums_dropped(features.updates(order, entities), snapshot)
        step("counter_updates")
        rows = features.compute(view).reshape(1, -1)
        step("feature_row")
        scores, contributions = model.scores_and_contributions(rows)
        step("trees_and_calibration")
        reasons = explain_rows(rows, contributions)[0]
        step("explanations")
        hits = rules.list_hits(view) + rules.evaluate_row(rows[0])
        step("rules")
        decide(
            order_id=order.order_id,
            score=float(scores[0]),
            hits=hits,
            reasons=reasons,
            thresholds=model.thresholds,
            model_version=model.version,
            degraded=False,
            decided_at=order.created_at,
        )
        step("decision")
    return {name: round(statistics.median(values), 1) for name, values in steps.items()}


def _seconds(code: str, env: dict[str, str]) -> tuple[float, list[str]]:
    """Wall time of `code` in a fresh interpreter, and the top-level modules it left loaded."""
    program = (
        "import sys, time\nstarted = time.perf_counter()\n"
        + code
        + "\nelapsed = time.perf_counter() - started\n"
        "print(elapsed, *sorted({m.partition('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env={**os.environ, **env}, check=True
    )
    first, *modules = done.stdout.split()
    return float(first), modules


def cold_start(repeats: int) -> dict[str, Any]:
    traced: list[float] = []
    untraced: list[float] = []
    base: list[float] = []
    loaded: set[str] = set()
    for _ in range(repeats):  # interleaved: machine noise hits all three alike
        base.append(_seconds(COLD_BASE, LAMBDA_ENV)[0])
        seconds, modules = _seconds(COLD_HANDLER, LAMBDA_ENV)
        traced.append(seconds)
        loaded |= set(modules)
        untraced.append(_seconds(COLD_HANDLER, LAMBDA_ENV | {"POWERTOOLS_TRACE_DISABLED": "true"})[0])
    boto3_s = statistics.median(base)
    return {
        "cold_import_boto3_ms": round(boto3_s * 1e3),
        "cold_init_ms": round(statistics.median(traced) * 1e3),
        "cold_init_ratio_to_boto3": round(statistics.median(traced) / boto3_s, 2),
        "cold_init_trace_disabled_ms": round(statistics.median(untraced) * 1e3),
        "cold_init_trace_disabled_ratio_to_boto3": round(statistics.median(untraced) / boto3_s, 2),
        "cold_training_only_modules_loaded": sorted(loaded & set(TRAINING_ONLY)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--orders-per-day", type=int, default=1500)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--cold-repeats", type=int, default=7)
    parser.add_argument("--written-orders", type=int, default=40)
    args = parser.parse_args()
    started = time.perf_counter()
    figures, _probe = scoring_path(args.days, args.orders_per_day, args.samples)
    figures |= cold_start(args.cold_repeats)
    figures |= bench_writes.measure_simulated(args.written_orders)  # a warmed table, and a top seller
    figures["bench_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

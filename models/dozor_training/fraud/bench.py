"""Benchmarks, as ratios against a floor measured in the same run (`make bench-scoring`).

1. Scoring path: validate + features + trees + explain + rules + decide for one order, no AWS
   I/O (the in-memory store), against a bare xgboost ``booster.inplace_predict`` on the same
   feature row (what serving called before the NumPy evaluator); and where the path goes, its steps
   timed one by one as `prepare` makes them (``path_steps_us``).
2. The same path for a batch of 10 (the order-events function), per order, against the single path.
3. Cold start: the main thread's CPU time in a fresh interpreter importing the ScoreOrder handler
   and loading the packaged model, against one importing boto3; both in Lambda's environment
   (powertools' X-Ray tracer on), and again with POWERTOOLS_TRACE_DISABLED, interleaved, medians;
   and the libraries' floor: one importing only the third-party modules the Lambda package's
   code imports. With bytecode, and once more with the Lambda package's own modules compiled at
   import, as SAM ships them.
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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

import dozor
from dozor.adapters.memory import CollectingReviewQueue, InMemoryDecisionStore
from dozor.domain import aggregates as agg
from dozor.domain.contracts import Order
from dozor.domain.fraud import features, rules
from dozor.domain.fraud.decisions import decide
from dozor.domain.fraud.explanations import explain_rows
from dozor.domain.fraud.model import PACKAGED_MODEL_DIR, FraudModel
from dozor.domain.fraud.scoring import OrderScoring, ScoredOrder, fingerprint
from dozor.domain.privacy import PiiHasher, pseudonymise
from dozor_training.fraud import bench_first_request, bench_writes
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
# Runs COLD_HANDLER and prints the import statements the Lambda package's own modules ran for
# third-party modules (`import x.y`, `from x.y import z`), whatever imported those modules first.
# Running exactly those statements is the libraries' floor under the handler's cold start.
COLD_FLOOR_PROBE = """
import builtins, collections, json, sys
real, names = builtins.__import__, collections.defaultdict(set)

def recording(name, globals=None, locals=None, fromlist=(), level=0):
    module = real(name, globals, locals, fromlist, level)
    importer = str((globals or {}).get("__name__", ""))
    if level == 0 and importer.partition(".")[0] == "dozor" and name.partition(".")[0] != "dozor":
        names[name].update(fromlist or ())
    return module

builtins.__import__ = recording
"""
COLD_FLOOR_PROBE += COLD_HANDLER
COLD_FLOOR_PROBE += """
builtins.__import__ = real
third = sorted((n, sorted(i)) for n, i in names.items() if n.partition(".")[0] not in sys.stdlib_module_names)
print(json.dumps([f"from {n} import {', '.join(i)}" if i else f"import {n}" for n, i in third]))
"""


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
        # As prepare reads for one order: its keys are distinct already, no set.
        _, snapshot = store.load([order.order_id], agg.keys_for(entities.values(), order.created_at))
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
    """The main thread's CPU time running `code` in a fresh interpreter, and the top-level modules
    it left loaded.

    CPU, not wall time: on a shared machine the wall time of the same import swings by a third
    from run to run (other processes' turns on the cores), its CPU time by a few per cent; an
    import is one thread that never waits but for files, so on an idle core the two agree. The
    main thread's alone: numpy's BLAS threads spin on start, which is no work of the import.
    """
    program = (
        "import sys, time\nstarted = time.thread_time()\n"
        + code
        + "\nelapsed = time.thread_time() - started\n"
        "print(elapsed, *sorted({m.partition('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env={**os.environ, **env}, check=True
    )
    first, *modules = done.stdout.split()
    return float(first), modules


def _floor_imports(env: dict[str, str]) -> list[str]:
    probe = [sys.executable, "-c", COLD_FLOOR_PROBE]
    done = subprocess.run(probe, capture_output=True, text=True, env={**os.environ, **env}, check=True)
    statements: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return statements


def _bytecode_envs(cache: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Lambda's environment with bytecode for everything, and with bytecode for all but the
    Lambda package's own modules (compiled at every import: SAM ships `functions/` as source,
    where the layer is precompiled by infra/build_layer.sh and the runtime's boto3 comes compiled).

    Their own caches (``cache``/all, ``cache``/libraries), so the figures depend neither on
    PYTHONDONTWRITEBYTECODE nor on what happens to be compiled in the venv.
    """
    everything, libraries = cache / "all", cache / "libraries"
    env = LAMBDA_ENV | {"PYTHONPYCACHEPREFIX": str(everything), "PYTHONDONTWRITEBYTECODE": ""}
    for code in (COLD_BASE, COLD_HANDLER):  # fills the cache
        _seconds(code, env)
    shutil.copytree(everything, libraries)
    # the cache mirrors each source directory's absolute path, as the interpreter writes it (not resolved)
    shutil.rmtree(libraries / Path(os.path.abspath(dozor.__file__)).parent.relative_to("/"))
    return env, LAMBDA_ENV | {"PYTHONPYCACHEPREFIX": str(libraries), "PYTHONDONTWRITEBYTECODE": "1"}


def cold_start(repeats: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {name: [] for name in ("boto3", "init", "untraced", "source", "floor")}
    runs |= {"first": [], "warm": []}
    loaded: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="dozor-bytecode-") as cache:
        env, source_env = _bytecode_envs(Path(cache))
        untraced_env = env | {"POWERTOOLS_TRACE_DISABLED": "true"}
        libraries = _floor_imports(env)
        floor_code = "\n".join(libraries)
        _seconds(floor_code, env)
        # No warm-up run: the emulator's first calls are slow (it builds each service's backend),
        # but in its own process, and the child's CPU is what is counted.
        with bench_first_request.cold_requests(env) as requests:
            for _ in range(max(3, repeats // 2)):  # ~3 s each, and ~220 ms CPU: noise matters less
                first, warm = requests()
                runs["first"].append(first)
                runs["warm"].append(warm)
        for _ in range(repeats):  # interleaved: machine noise hits all of them alike
            runs["boto3"].append(_seconds(COLD_BASE, env)[0])
            seconds, modules = _seconds(COLD_HANDLER, env)
            runs["init"].append(seconds)
            loaded |= set(modules)
            runs["untraced"].append(_seconds(COLD_HANDLER, untraced_env)[0])
            runs["source"].append(_seconds(COLD_HANDLER, source_env)[0])
            runs["floor"].append(_seconds(floor_code, env)[0])
    median = {name: statistics.median(seconds) for name, seconds in runs.items()}
    boto3_s = median["boto3"]
    return {
        "cold_import_boto3_ms": round(boto3_s * 1e3),
        "cold_init_ms": round(median["init"] * 1e3),
        "cold_init_ratio_to_boto3": round(median["init"] / boto3_s, 2),
        "cold_init_trace_disabled_ms": round(median["untraced"] * 1e3),
        "cold_init_trace_disabled_ratio_to_boto3": round(median["untraced"] / boto3_s, 2),
        # The Lambda package compiled at import, as SAM deploys it today (`_bytecode_envs`).
        "cold_init_own_code_uncompiled_ms": round(median["source"] * 1e3),
        "cold_init_own_code_uncompiled_ratio_to_boto3": round(median["source"] / boto3_s, 2),
        # Only the third-party imports the handler's own code makes (boto3 among them), the same
        # statements: what the cold start would cost if the Lambda package itself cost nothing.
        "cold_libraries_floor_ms": round(median["floor"] * 1e3),
        "cold_libraries_floor_ratio_to_boto3": round(median["floor"] / boto3_s, 2),
        "cold_init_over_floor_ratio_to_boto3": round((median["init"] - median["floor"]) / boto3_s, 2),
        "cold_libraries_floor_imports": libraries,
        # A cold container's first checkout request, after the init above, and a warm one (on the
        # AWS emulator, its own process; `bench_first_request`).
        "cold_first_request_ms": round(median["first"] * 1e3),
        "cold_first_request_ratio_to_boto3": round(median["first"] / boto3_s, 2),
        "cold_warm_request_ms": round(median["warm"] * 1e3, 1),
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

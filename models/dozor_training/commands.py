"""The training commands the `dozor` CLI exposes."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from dozor.domain.contracts import Order
from dozor.domain.feedback import Label
from dozor_training.replay import replay_parallel
from dozor_training.simulator import SimulatedOrder, SimulationConfig, simulate
from dozor_training.train import ARTIFACTS_DIR, install, train_fraud


def add_train_fraud(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "train-fraud",
        help="simulate a marketplace history, replay it through the feature code and train the fraud model",
    )
    parser.add_argument("--days", type=int, default=60, help="days of simulated history")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--orders-per-day", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=ARTIFACTS_DIR, help="where versioned artifacts go")
    parser.add_argument(
        "--install", action="store_true", help="make it the model the functions package carries"
    )
    parser.set_defaults(run=train_fraud_command)


def simulated_labels(history: Sequence[SimulatedOrder]) -> list[Label]:
    """The labels the simulated marketplace reported (chargebacks, confirmations), as in a labels file."""
    return [
        Label(s.order["order_id"], s.is_fraud, s.label_reported_at)
        for s in history
        if s.label_reported_at is not None
    ]


def train_fraud_command(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    history = simulate(SimulationConfig(days=args.days, seed=args.seed, orders_per_day=args.orders_per_day))
    orders = [Order.model_validate(s.order) for s in history]
    labels = simulated_labels(history)
    t1 = time.perf_counter()
    replayed = replay_parallel(orders, labels)
    t2 = time.perf_counter()
    trained = train_fraud(replayed, labels, args.out)
    t3 = time.perf_counter()
    if args.install:
        install(trained.directory)
    print(
        json.dumps(
            {
                "version": trained.metadata["version"],
                "directory": str(trained.directory),
                "installed": bool(args.install),
                "orders": len(orders),
                "seconds": {
                    "simulate": round(t1 - t0, 1),
                    "replay": round(t2 - t1, 1),
                    "fit": round(t3 - t2, 1),
                },
                "thresholds": trained.metadata["thresholds"],
                "test_metrics": trained.metadata["metrics"]["test"],
            },
            indent=2,
        )
    )
    return 0

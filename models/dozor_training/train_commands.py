"""The training commands the `dozor` CLI exposes."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from dozor.domain.contracts import Order
from dozor.domain.feedback import Label
from dozor_training.evaluation import CostModel
from dozor_training.fitting import ARTIFACTS_DIR
from dozor_training.fraud.engines import ENGINES, engine
from dozor_training.fraud.replay import replay_parallel
from dozor_training.fraud.simulator import SimulatedOrder, SimulationConfig, simulate
from dozor_training.fraud.train import (
    PeriodError,
    TrainingConfig,
    choose_periods,
    install,
    train_fraud,
    typical_label_delay_days,
)
from dozor_training.history import HistoryError, UnsupportedFormatError, open_orders, read_labels, read_losses
from dozor_training.history_rejects import InvalidBound
from dozor_training.parcels.simulator import simulate_shipments, simulated_losses
from dozor_training.tune import DEFAULT_BUDGET_SECONDS, TuneConfig


def configure_train_fraud(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=60, help="days of simulated history")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--orders-per-day", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=ARTIFACTS_DIR, help="where versioned artifacts go")
    parser.add_argument(
        "--install", action="store_true", help="make it the model the functions package carries"
    )
    add_tune_arguments(parser)
    parser.set_defaults(run=train_fraud_command)


def add_tune_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tune",
        action="store_true",
        help="choose the XGBoost hyperparameters on rolling time-ordered folds of the training period "
        "before fitting (calibration and thresholds are chosen afterwards, as without it)",
    )
    parser.add_argument(
        "--tune-budget",
        type=float,
        default=DEFAULT_BUDGET_SECONDS,
        metavar="SECONDS",
        help=f"wall time the search may take (default {DEFAULT_BUDGET_SECONDS:g})",
    )


def tune_config(args: argparse.Namespace) -> TuneConfig | None:
    return TuneConfig(budget_seconds=args.tune_budget) if args.tune else None


def invalid_bound(text: str) -> InvalidBound:
    try:
        return InvalidBound.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


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
    losses = simulated_losses(simulate_shipments(history, args.seed))
    t1 = time.perf_counter()
    replayed = replay_parallel(orders, labels, losses)
    t2 = time.perf_counter()
    config = TrainingConfig(data_source=f"simulated: {args.days} days, seed {args.seed}", simulated=True)
    trained = train_fraud(replayed, labels, args.out, config, tune=tune_config(args))
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
                "tuning": trained.metadata.get("tuning", {}).get("chosen"),
                "test_metrics": trained.metadata["metrics"]["test"],
            },
            indent=2,
        )
    )
    return 0


def _date(text: str) -> datetime:
    """An RFC 3339 date or timestamp; one without a zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"not a date: {text!r} (use 2026-10-01 or 2026-10-01T00:00:00Z)"
        ) from error
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def configure_train(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Replays the orders in time order through the serving feature code (each order sees only "
        "earlier orders and labels reported before it), trains XGBoost on the oldest period, "
        "calibrates and picks thresholds on the next, and judges the newest against the rules-only "
        "and logistic baselines. Writes model.ubj, metadata.json, metrics.json, report.md, "
        "MODEL_CARD.md and plots into --out."
    )
    parser.add_argument("--orders", type=Path, required=True, help="orders file (.csv, .jsonl, .parquet)")
    parser.add_argument(
        "--labels", type=Path, required=True, help="labels file: order_id, label, reported_at"
    )
    parser.add_argument("--out", type=Path, required=True, help="the model directory to write")
    for name in ("train-start", "train-end", "test-start", "test-end"):
        parser.add_argument(f"--{name}", type=_date, default=None, metavar="DATE")
    parser.add_argument(
        "--review-budget",
        type=float,
        default=None,
        metavar="K",
        help="orders a day the review team can look at; thresholds fill it (default: by cost alone)",
    )
    parser.add_argument("--review-cost", type=float, default=CostModel.review_cost_rub, metavar="RUB")
    parser.add_argument(
        "--false-decline-share",
        type=float,
        default=CostModel.false_decline_share,
        metavar="SHARE",
        help="share of a legitimate order's amount lost when it is declined",
    )
    parser.add_argument(
        "--install", action="store_true", help="make it the model the functions package carry"
    )
    parser.add_argument(
        "--max-invalid",
        type=invalid_bound,
        default=InvalidBound(),
        metavar="N|P%",
        help="orders rows that may be rejected (a count, or a share like 0.5%%) rather than refusing "
        "the file; they go to quarantine.csv in --out with line, field and reason (default 0)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: the columnar replay and xgboost on this machine; spark: the entity kernels as "
        "Spark tasks and xgboost's Spark estimator (see infra/spark/README.md)",
    )
    add_tune_arguments(parser)
    parser.set_defaults(run=train_command)


def train_command(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        history = open_orders(args.orders, args.max_invalid)
        labels = read_labels(args.labels)
        losses = read_losses(args.labels)
        chosen = engine(args.engine)
        replayed = chosen.replay(history.iter_orders, labels, losses)
        replayed_at = time.perf_counter()
        config = TrainingConfig(
            review_budget_per_day=args.review_budget,
            cost=CostModel(review_cost_rub=args.review_cost, false_decline_share=args.false_decline_share),
            data_source=f"{args.orders.name} + {args.labels.name}",
        )
        times = replayed.created_at
        delay = typical_label_delay_days(dict(zip(replayed.order_ids, times, strict=True)), labels)
        periods = choose_periods(
            times,
            delay,
            config,
            train_start=args.train_start,
            train_end=args.train_end,
            test_start=args.test_start,
            test_end=args.test_end,
        )
        trained = train_fraud(
            replayed,
            labels,
            args.out,
            config,
            periods,
            versioned=False,
            quarantine=history.quarantine,
            tune=tune_config(args),
            fit=chosen.fit,
        )
    except (HistoryError, UnsupportedFormatError, PeriodError, OSError) as error:
        print(f"dozor train: {error}", file=sys.stderr)
        return 2
    if args.install:
        install(trained.directory)
    metadata = trained.metadata
    print(
        json.dumps(
            {
                "version": metadata["version"],
                "directory": str(trained.directory),
                "installed": bool(args.install),
                "orders": len(replayed),
                "periods": metadata["data"]["periods"],
                "seconds": {"read_and_replay": round(replayed_at - started, 1), **metadata["seconds"]},
                "replay_us_per_order": round((replayed_at - started) / max(len(replayed), 1) * 1e6, 1),
                "peak_rss_mb": peak_rss_mb(),
                "thresholds": metadata["thresholds"],
                "rejected": metadata["data"].get("rejected"),
                "tuning": metadata.get("tuning", {}).get("chosen"),
                "test": metadata["metrics"]["test"],
            },
            indent=2,
        )
    )
    return 0


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory of this process and of its largest finished child (the replay partition)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"process": round(own, 1), "replay_child": round(child, 1)}

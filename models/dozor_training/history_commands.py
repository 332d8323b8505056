"""`dozor simulate` and `dozor score-batch`: history files in, history files out.

`simulate` writes a simulated marketplace history in the files an engineer would bring of their
own (orders, labels), so every command that reads history can be tried without real data.
`score-batch` scores such a file the way serving would have, order by order in time order, and,
given labels, says how the model and thresholds would have done: a backtest.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dozor.domain.contracts import DecisionKind
from dozor.domain.errors import ModelMismatchError
from dozor.domain.feedback import Label, Loss
from dozor.domain.fraud.decisions import combine
from dozor.domain.fraud.model import PACKAGED_MODEL_DIR, FraudModel, Thresholds
from dozor_training.fraud.replay import replay_parallel
from dozor_training.fraud.simulator import SimulatedOrder, SimulationConfig, simulate
from dozor_training.history import (
    FRAUD,
    LEGIT,
    LOST,
    HistoryError,
    OrderHistory,
    UnsupportedFormatError,
    format_of,
    open_orders,
    read_labels,
    read_losses,
)
from dozor_training.history_rejects import InvalidBound, quarantine_path_beside
from dozor_training.history_writer import write_labels, write_orders, write_rows
from dozor_training.parcels.simulator import write_simulated_shipments

FORMATS = ("jsonl", "csv", "parquet")
SCORE_BATCH = 65_536  # rows per booster call: big enough to amortise the call, small next to the matrix
INPUT_ERROR = 2  # exit status for a bad file or argument, as argparse uses for bad usage

# What `dozor simulate` writes, one file each, `<name>.<format>`: the shipments file joins here.
HISTORY_FILES = ("orders", "labels")  # in the chosen format; shipments.jsonl (scan events) beside them


# --- simulate -----------------------------------------------------------------------------------


def configure_simulate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=30, help="days of history")
    parser.add_argument("--seed", type=int, default=7, help="the same seed writes the same bytes")
    parser.add_argument("--orders-per-day", type=int, default=3000, help="an ordinary day's volume")
    parser.add_argument("--format", choices=FORMATS, default="jsonl", help="file format (default jsonl)")
    parser.add_argument("--out", type=Path, required=True, help="directory for orders.<ext> and labels.<ext>")
    parser.add_argument(
        "--without-shipments",
        action="store_true",
        help="orders and fraud labels only: no shipments.jsonl and no 'lost' labels (faster: a million "
        "orders' scans are about 10 million lines, sorted into arrival order through run files on disk)",
    )
    parser.set_defaults(run=simulate_command)


def simulate_command(args: argparse.Namespace) -> int:
    """Simulate, write the files, and print what was written."""
    started = time.perf_counter()
    try:
        config = SimulationConfig(days=args.days, seed=args.seed, orders_per_day=args.orders_per_day)
    except ValueError as e:
        print(f"dozor simulate: {e}", file=sys.stderr)
        return INPUT_ERROR
    history = simulate(config)
    simulated = time.perf_counter()
    files = write_simulated_history(history, args.out, args.format, args.seed, not args.without_shipments)
    written = time.perf_counter()
    fraud = sum(o.is_fraud for o in history)
    labelled = [o for o in history if o.label_reported_at is not None]
    summary = {
        "files": {name: str(path) for name, path in files.items()},
        "orders": len(history),
        "fraud_share": round(fraud / len(history), 4) if history else 0.0,
        "labels": len(labelled),
        "fraud_labels": sum(o.is_fraud for o in labelled),
        "first_order_at": history[0].order["created_at"] if history else None,
        "last_order_at": history[-1].order["created_at"] if history else None,
        "seed": args.seed,
        "seconds": {"simulate": round(simulated - started, 1), "write": round(written - simulated, 1)},
    }
    print(json.dumps(summary, indent=2))
    return 0


def write_simulated_history(
    history: Sequence[SimulatedOrder], out_dir: Path, fmt: str, seed: int = 7, shipments: bool = True
) -> dict[str, Path]:
    """Write each of HISTORY_FILES for `history` into `out_dir` as `<name>.<fmt>`; returns the paths."""
    out_dir = Path(out_dir)
    files = {name: out_dir / f"{name}.{fmt}" for name in HISTORY_FILES}
    write_orders((o.order for o in history), files["orders"])
    # Streamed: the parcels and their scans are never all in memory (a million orders' took ~15 GB).
    scans, simulated = (
        write_simulated_shipments(history, seed, out_dir / "shipments.jsonl") if shipments else (None, [])
    )
    # In the order the labels arrived, as a labels export would list them: fraud verdicts, and
    # parcels lost (the carrier's LOST scan or the buyer's claim, whichever came first).
    verdicts = [
        (o.label_reported_at, o.order["order_id"], FRAUD if o.is_fraud else LEGIT, o.pattern)
        for o in history
        if o.label_reported_at is not None
    ]
    losses = [(loss.reported_at, loss.order_id, LOST, "") for loss in simulated]
    write_labels(
        (
            {"order_id": order_id, "label": label, "reported_at": reported_at, "pattern": pattern}
            for reported_at, order_id, label, pattern in sorted(verdicts + losses)
        ),
        files["labels"],
    )
    if scans is not None:
        files["shipments"] = scans
    return files


# --- score-batch --------------------------------------------------------------------------------


def configure_score_batch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=PACKAGED_MODEL_DIR, help="model artifact directory")
    parser.add_argument("--orders", type=Path, required=True, help="orders file (.csv, .jsonl, .parquet)")
    parser.add_argument("--labels", type=Path, help="labels file: adds a backtest summary")
    parser.add_argument("--out", type=Path, required=True, help="decisions file (.csv, .jsonl, .parquet)")
    parser.add_argument("--review-threshold", type=float, help="what-if: REVIEW from this score")
    parser.add_argument("--decline-threshold", type=float, help="what-if: DECLINE from this score")
    parser.add_argument(
        "--max-invalid",
        type=_invalid_bound,
        default=InvalidBound(),
        metavar="N|P%",
        help="orders rows that may be rejected (a count, or a share like 0.5%%) rather than refusing "
        "the file; they are not scored and go to <out>.quarantine.csv beside --out (default 0)",
    )
    parser.set_defaults(run=score_batch_command)


def _invalid_bound(text: str) -> InvalidBound:
    try:
        return InvalidBound.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


@dataclass(frozen=True)
class BatchDecisions:
    """Serving's decision for every order of a history, in time order."""

    order_ids: list[str]
    scores: np.ndarray  # calibrated P(fraud), float64
    decisions: list[DecisionKind]
    rules: list[list[str]]
    model_version: str
    thresholds: Thresholds


def score_history(
    history: OrderHistory,
    model: FraudModel,
    labels: Sequence[Label] = (),
    thresholds: Thresholds | None = None,
    losses: Sequence[Loss] = (),
) -> BatchDecisions:
    """Replay `history` point-in-time (with the labels and parcel losses reported so far), score every
    order and decide as serving does."""
    thresholds = thresholds or model.thresholds
    replayed = replay_parallel(history.iter_orders, labels, losses)
    matrix = replayed.matrix
    scores = np.concatenate(
        [model.scores(matrix[i : i + SCORE_BATCH]) for i in range(0, len(matrix), SCORE_BATCH)]
        or [np.empty(0, dtype=np.float64)]
    )
    decisions = [
        combine(float(score), hits, thresholds)
        for score, hits in zip(scores, replayed.rule_hits, strict=True)
    ]
    rules = [[hit.rule_id for hit in hits] for hits in replayed.rule_hits]
    return BatchDecisions(replayed.order_ids, scores, decisions, rules, model.version, thresholds)


def decision_rows(
    batch: BatchDecisions, labels: Sequence[Label] | None
) -> tuple[list[str], Iterator[list[Any]]]:
    """The output columns and rows: order_id, score, decision, rules, model_version (+ label)."""
    columns = ["order_id", "score", "decision", "rules", "model_version"]
    verdict: dict[str, str] = {}
    if labels is not None:
        columns.append("label")
        verdict = {label.order_id: FRAUD if label.is_fraud else LEGIT for label in labels}

    def rows() -> Iterator[list[Any]]:
        for order_id, score, decision, rules in zip(
            batch.order_ids, batch.scores.tolist(), batch.decisions, batch.rules, strict=True
        ):
            # Unrounded: a rounded score can cross a threshold the decision was taken on.
            row = [order_id, score, decision.value, rules, batch.model_version]
            if labels is not None:
                row.append(verdict.get(order_id))
            yield row

    return columns, rows()


def backtest(batch: BatchDecisions, labels: Sequence[Label]) -> dict[str, Any]:
    """How the decisions did against the labels: ranking quality and what REVIEW + DECLINE caught.

    Precision is over flagged orders that have a label: an unlabelled flagged order is unknown.
    """
    is_fraud = {label.order_id: label.is_fraud for label in labels}
    flagged = np.array([d is not DecisionKind.APPROVE for d in batch.decisions], dtype=bool)
    known = np.array([order_id in is_fraud for order_id in batch.order_ids], dtype=bool)
    fraud = np.array([is_fraud.get(order_id, False) for order_id in batch.order_ids], dtype=bool)
    n_fraud = int(fraud.sum())
    flagged_known = int((flagged & known).sum())
    caught = int((flagged & fraud).sum())
    summary: dict[str, Any] = {
        "orders": len(batch.order_ids),
        "labelled": int(known.sum()),
        "fraud_labelled": n_fraud,
        "fraud_share_of_labelled": _ratio(n_fraud, int(known.sum())),
        "flagged_share": _ratio(int(flagged.sum()), len(flagged)),
        "recall": _ratio(caught, n_fraud),
        "precision": _ratio(caught, flagged_known),
    }
    summary.update(_ranking_metrics(fraud[known], batch.scores[known]))
    return summary


def _ranking_metrics(y: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    try:
        from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: PLC0415 - optional
    except ImportError:
        return {}
    if len(set(y.tolist())) < 2:
        return {"average_precision": None, "roc_auc": None}  # undefined with one class
    return {
        "average_precision": round(float(average_precision_score(y, scores)), 4),
        "roc_auc": round(float(roc_auc_score(y, scores)), 4),
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _thresholds(args: argparse.Namespace, model: FraudModel) -> Thresholds:
    review = model.thresholds.review if args.review_threshold is None else args.review_threshold
    decline = model.thresholds.decline if args.decline_threshold is None else args.decline_threshold
    if not 0.0 <= review <= decline <= 1.0:
        raise ValueError(f"thresholds must satisfy 0 <= review ({review}) <= decline ({decline}) <= 1")
    return Thresholds(review=review, decline=decline)


def score_batch_command(args: argparse.Namespace) -> int:
    """Score the orders file, write the decisions file, print a summary (and a backtest on labels)."""
    started = time.perf_counter()
    try:
        format_of(args.out)  # refuse an unknown output format before the work, not after
        history = open_orders(args.orders, args.max_invalid)
        labels = read_labels(args.labels) if args.labels is not None else None
        losses = read_losses(args.labels) if args.labels is not None else []
        model = FraudModel.load(args.model)
        thresholds = _thresholds(args, model)
        batch = score_history(history, model, labels or (), thresholds, losses)
    except (HistoryError, UnsupportedFormatError, ModelMismatchError, OSError, ValueError) as e:
        # Nothing is written: a backtest on half a file, or on garbage, is worse than none.
        print(f"dozor score-batch: {e}", file=sys.stderr)
        return INPUT_ERROR
    scored = time.perf_counter()
    columns, rows = decision_rows(batch, labels)
    try:
        write_rows(rows, columns, args.out)
        quarantine = history.quarantine and history.quarantine.written_to(quarantine_path_beside(args.out))
    except (UnsupportedFormatError, OSError) as e:
        print(f"dozor score-batch: {e}", file=sys.stderr)
        return INPUT_ERROR
    summary: dict[str, Any] = {
        "out": str(args.out),
        "orders": len(batch.order_ids),
        "model_version": batch.model_version,
        "thresholds": {"review": thresholds.review, "decline": thresholds.decline},
        "decisions": {kind.value: n for kind, n in sorted(Counter(batch.decisions).items())},
        "seconds": {"score": round(scored - started, 1), "write": round(time.perf_counter() - scored, 1)},
    }
    if quarantine is not None and not quarantine.bound.strict:
        summary["rejected"] = quarantine.as_dict()
    if labels is not None:
        summary["backtest"] = backtest(batch, labels)
    print(json.dumps(summary, indent=2))
    return 0

"""Train the parcel-loss model: parcel histories → sweep snapshots → XGBoost → calibration → threshold.

Like the fraud trainer, parcels are split by time (when they shipped), never at random: lane
deadlines and the booster learn from the oldest parcels, calibration and the LIKELY_LOST threshold
come from the next ones, and the newest are held out for the report. A training row is a parcel as
the sweeper saw it at one sweep (only scans that had *arrived* by then), labelled with whether the
parcel ended lost; each parcel contributes several rows at different ages, mostly from the sweeps
where it was overdue, because those are the parcels the sweeper scores.

The test snapshots are judged by the generic evaluation and report (AP, ROC AUC, calibration,
precision@k, the model card) beside a logistic baseline on the same rows; what only parcels have,
the timing of alerts (recall before the loss is certain, lead time, false alerts per 1,000
delivered, against the "no scan for 30 days" rule), comes from `parcels.evaluation` and goes into
the report as its own sections (`parcels.report`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from dozor.domain.clock import HOUR, from_epoch
from dozor.domain.parcels.lanes import LANES_FILE, LaneDeadlines, learn_deadlines
from dozor.domain.parcels.model import PACKAGED_PARCEL_MODEL_DIR, PARCEL_FEATURE_NAMES, ParcelLossModel
from dozor.domain.parcels.model import parcel_features as features_of
from dozor.domain.parcels.shipments import TERMINAL
from dozor.domain.trees import TREES_FILE, TreeEnsemble
from dozor_training.evaluation import (
    LOGISTIC,
    MODEL,
    EvaluationSet,
    day_index,
    evaluate,
    fit_logistic_baseline,
)
from dozor_training.fitting import ARTIFACTS_DIR, calibration_knots, export_booster, fit_booster, parity_rows
from dozor_training.parcels.evaluation import (
    SWEEP_HOURS,
    CarrierFeeds,
    SellerLossRates,
    Sweep,
    alert_metrics,
    at,
    evaluate_alerts,
    first_risk_alerts,
    known_states,
    overdue_sweeps,
    parcel_known,
)
from dozor_training.parcels.report import alert_sections, model_card_info
from dozor_training.parcels.simulator import LOST, SimulatedParcel
from dozor_training.report import write_report
from dozor_training.report_text import PARCEL_LOSS_TASK

PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "aucpr",
    "tree_method": "hist",
    "max_depth": 5,
    "eta": 0.08,
    "min_child_weight": 5,
    "subsample": 0.9,
    "colsample_bytree": 0.9,
    "lambda": 1.0,
    "nthread": 2,
    "seed": 7,
}
BASELINE_ROWS = 200_000  # training rows the logistic baseline is fitted on (a sample beyond that)
CONTRIBUTION_ROWS = 5_000  # test rows the feature-contribution plot is drawn from
ARTIFACT_FILES = (
    "model.ubj",
    TREES_FILE,
    "metadata.json",
    LANES_FILE,
    "metrics.json",
    "report.md",
    "MODEL_CARD.md",
)


@dataclass(frozen=True)
class ParcelTrainingConfig:
    calibration_share: float = 0.15
    test_share: float = 0.2
    sweep_hours: float = SWEEP_HOURS
    overdue_per_parcel: int = 8  # sweep snapshots kept per parcel while it is overdue
    fresh_per_parcel: int = 2  # snapshots at random moments of its journey, overdue or not
    false_alerts_per_1000_delivered: float = 10.0  # LIKELY_LOST's budget, set on calibration parcels
    # Share of training rows whose seller loss rate is blanked, so the model also knows what to do
    # when serving cannot supply it (a new seller, or a deployment without label aggregates).
    seller_rate_dropout: float = 0.3
    min_lane_samples: int = 30
    seed: int = 7


@dataclass(frozen=True)
class TrainedParcelModel:
    directory: Path
    metadata: dict[str, Any]
    evaluation: dict[str, Any]


@dataclass
class Rows:
    x: np.ndarray
    y: np.ndarray
    overdue: np.ndarray  # bool: taken at a sweep where the parcel was overdue
    times: np.ndarray  # epoch seconds of each snapshot
    parcel: np.ndarray  # index of each row's parcel in the list the rows were built from


def _fresh_rows(
    parcels: Sequence[SimulatedParcel],
    deadlines: LaneDeadlines,
    sellers: SellerLossRates,
    fraud_scores: Mapping[str, float] | None,
    per_parcel: int,
    rng: np.random.Generator,
) -> tuple[list[np.ndarray], list[int], list[float]]:
    rows: list[np.ndarray] = []
    index: list[int] = []
    times: list[float] = []
    for n, p in enumerate(parcels):
        states = [s for s in known_states(p) if s.status not in TERMINAL]
        if not states:
            continue
        start, end = states[0].start, states[-1].end
        for t in rng.uniform(start, end, per_parcel):
            state = next((s for s in states if s.start <= t < s.end), None)
            if state is None:
                continue
            parcel = parcel_known(p, state, deadlines)
            fraud = None if fraud_scores is None else fraud_scores.get(p.order_id)
            rows.append(
                features_of(
                    parcel,
                    at(float(t)),
                    deadlines,
                    seller_loss_rate_30d=sellers.at(p.seller_id, float(t)),
                    order_fraud_score=fraud,
                )
            )
            index.append(n)
            times.append(float(t))
    return rows, index, times


def training_rows(
    parcels: Sequence[SimulatedParcel],
    deadlines: LaneDeadlines,
    sellers: SellerLossRates,
    fraud_scores: Mapping[str, float] | None,
    config: ParcelTrainingConfig,
    blank_seller_rates: bool = True,
) -> Rows:
    """Snapshot rows of these parcels: overdue sweeps (capped per parcel) plus a few random moments."""
    sweep = overdue_sweeps(
        parcels,
        deadlines,
        sellers,
        fraud_scores,
        config.sweep_hours * HOUR,
        max_per_parcel=config.overdue_per_parcel,
        seed=config.seed,
    )
    fresh, fresh_index, fresh_times = _fresh_rows(
        parcels, deadlines, sellers, fraud_scores, config.fresh_per_parcel, np.random.default_rng(config.seed)
    )
    lost = np.array([p.outcome == LOST for p in parcels], dtype=np.float32)
    x = np.vstack([sweep.rows, *fresh]) if fresh else sweep.rows
    index = np.asarray(sweep.parcel_index + fresh_index, dtype=np.int64)
    overdue = np.zeros(len(index), dtype=bool)
    overdue[: sweep.size] = True
    x = x.astype(np.float32)
    dropout = config.seller_rate_dropout if blank_seller_rates else 0.0
    blank = np.random.default_rng(config.seed + 1).random(len(x)) < dropout
    x[blank, PARCEL_FEATURE_NAMES.index("seller_loss_rate_30d")] = np.nan
    times = np.asarray(sweep.times + fresh_times, dtype=np.float64)
    return Rows(x, lost[index], overdue, times, index)


def _threshold(
    parcels: Sequence[SimulatedParcel], sweep: Sweep, risks: np.ndarray, budget: float
) -> tuple[float, dict[str, Any]]:
    """The lowest risk threshold whose LIKELY_LOST alerts stay within the false-alert budget."""
    candidates: list[float] = []
    if risks.size:
        candidates = np.unique(np.round(np.quantile(risks, np.linspace(0.5, 0.999, 120)), 4)).tolist()
    best: tuple[float, dict[str, Any]] = (1.0, alert_metrics(parcels, [None] * len(parcels)))
    for threshold in sorted(candidates, reverse=True):
        metrics = alert_metrics(parcels, first_risk_alerts(sweep, risks, float(threshold), len(parcels)))
        if metrics["false_alerts_per_1000_delivered"] > budget:
            break
        best = (float(threshold), metrics)
    return best


def fingerprint(parcels: Sequence[SimulatedParcel]) -> str:
    """A digest of which parcels were trained on and how they ended."""
    digest = hashlib.sha256()
    for p in sorted(parcels, key=lambda p: p.parcel_id):
        digest.update(f"{p.parcel_id}:{p.outcome}\n".encode())
    return digest.hexdigest()


def _split(parcels: Sequence[SimulatedParcel], config: ParcelTrainingConfig) -> tuple[list[Any], ...]:
    ordered = sorted(parcels, key=lambda p: p.shipped_at)
    start, end = ordered[0].shipped_at, ordered[-1].shipped_at
    cal_start = start + (end - start) * (1 - config.test_share - config.calibration_share)
    test_start = start + (end - start) * (1 - config.test_share)
    train = [p for p in ordered if p.shipped_at < cal_start]
    cal = [p for p in ordered if cal_start <= p.shipped_at < test_start]
    test = [p for p in ordered if p.shipped_at >= test_start]
    return train, cal, test, [start, cal_start, test_start, end]


def train_parcel_model(
    parcels: Sequence[SimulatedParcel],
    out_dir: Path = ARTIFACTS_DIR,
    config: ParcelTrainingConfig | None = None,
    fraud_scores: Mapping[str, float] | None = None,
) -> TrainedParcelModel:
    """Learn lane deadlines, train and calibrate the loss model, evaluate alerts; write the artifact."""
    config = config or ParcelTrainingConfig()
    train, cal, test, bounds = _split(parcels, config)
    deadlines = learn_deadlines((p.final_parcel() for p in train), min_samples=config.min_lane_samples)
    sellers = SellerLossRates(parcels)
    train_rows = training_rows(train, deadlines, sellers, fraud_scores, config)
    cal_rows = training_rows(cal, deadlines, sellers, fraud_scores, config)
    test_rows = training_rows(test, deadlines, sellers, fraud_scores, config, blank_seller_rates=False)
    booster = fit_booster(PARAMS, PARCEL_FEATURE_NAMES, train_rows.x, train_rows.y, cal_rows.x, cal_rows.y)
    raw_cal = np.asarray(booster.inplace_predict(cal_rows.x), dtype=np.float64)
    metadata: dict[str, Any] = {
        "version": "pending",
        "kind": "parcel_loss",
        "feature_names": list(PARCEL_FEATURE_NAMES),
        "calibration": calibration_knots(raw_cal, cal_rows.y),
        "likely_lost_threshold": 1.0,
    }
    model = ParcelLossModel(TreeEnsemble.from_booster(booster), metadata, deadlines)
    cal_sweep = overdue_sweeps(cal, deadlines, sellers, fraud_scores, config.sweep_hours * HOUR)
    cal_risks = model.risk(cal_sweep.rows) if cal_sweep.size else np.empty(0)
    threshold, cal_alerts = _threshold(cal, cal_sweep, cal_risks, config.false_alerts_per_1000_delivered)
    metadata["likely_lost_threshold"] = round(threshold, 6)

    alerts = evaluate_alerts(test, model, sellers, fraud_scores, config.sweep_hours, CarrierFeeds(parcels))
    test_set, metrics = _evaluate(model, train_rows, test_rows, test)
    metrics |= {"calibration_likely_lost_alerts": cal_alerts, "test_alerts": alerts}
    trained_at = datetime.now(UTC)
    version = f"parcels-{trained_at:%Y%m%d}-{fingerprint(parcels)[:8]}"
    iso = [from_epoch(b).isoformat() for b in bounds]
    metadata |= {
        "version": version,
        "trained_at": trained_at.isoformat(),
        "data": {
            "parcels": len(parcels),
            "lost": sum(p.outcome == LOST for p in parcels),
            "train": [iso[0], iso[1], len(train)],
            "calibration": [iso[1], iso[2], len(cal)],
            "test": [iso[2], iso[3], len(test)],
            "rows": {"train": len(train_rows.y), "calibration": len(cal_rows.y), "test": len(test_rows.y)},
        },
        "params": PARAMS | {"rounds": booster.num_boosted_rounds()},
        "xgboost_version": xgb.__version__,
        "config": asdict(config),
        "metrics": {key: metrics[key] for key in HEADLINE_METRICS},
    }
    directory = out_dir / version
    directory.mkdir(parents=True, exist_ok=True)
    metadata["evaluator_error"] = export_booster(booster, directory, parity_rows(test_rows.x))
    (directory / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    (directory / LANES_FILE).write_text(deadlines.to_json() + "\n")
    splits = {"train": train, "calibration": cal, "test": test}
    _write_report(directory, booster, metadata, metrics, test_set, test_rows.x, splits)
    return TrainedParcelModel(directory, metadata, alerts)


# The numbers metadata.json carries; metrics.json beside it has these and the full evaluation.
HEADLINE_METRICS = ("test_rows", "test_overdue_rows", "calibration_likely_lost_alerts", "test_alerts")


def _evaluate(
    model: ParcelLossModel, train_rows: Rows, test_rows: Rows, test: Sequence[SimulatedParcel]
) -> tuple[EvaluationSet, dict[str, Any]]:
    """The generic evaluation of the test snapshots (model and logistic baseline), by snapshot day.

    Entity precision@k ranks sellers; there are no REVIEW / DECLINE thresholds and no cost model:
    the parcel model's decision is the LIKELY_LOST alert, judged by the alert metrics instead.
    """
    rows = np.arange(len(train_rows.y))
    if len(rows) > BASELINE_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, BASELINE_ROWS, replace=False))
    logistic = fit_logistic_baseline(train_rows.x[rows], train_rows.y[rows])
    sellers = np.array([test[int(i)].seller_id for i in test_rows.parcel], dtype=object)

    def snapshots(mask: np.ndarray) -> EvaluationSet:
        x = test_rows.x[mask]
        return EvaluationSet(
            y=test_rows.y[mask].astype(np.int8),
            days=day_index(test_rows.times[mask]),
            scores={MODEL: model.risk(x), LOGISTIC: logistic(x)},
            entity_ids=sellers[mask],
        )

    everything = np.ones(len(test_rows.y), dtype=bool)
    test_set = snapshots(everything)
    k = max(1, round(0.02 * len(test_set.y) / test_set.day_count))
    metrics = evaluate(test_set, thresholds={}, k_per_day=k)
    overdue = evaluate(snapshots(test_rows.overdue), thresholds={}, k_per_day=k)
    return test_set, metrics | {
        "test_rows": _snapshot_scores(metrics),
        "test_overdue_rows": _snapshot_scores(overdue),
    }


def _snapshot_scores(metrics: Mapping[str, Any]) -> dict[str, Any]:
    model = metrics["scorers"][MODEL]
    return {
        "rows": metrics["rows"],
        "lost_share": metrics["positive_rate"],
        "average_precision": model["average_precision"],
        "roc_auc": model["roc_auc"],
    }


def _write_report(
    directory: Path,
    booster: xgb.Booster,
    metadata: Mapping[str, Any],
    metrics: Mapping[str, Any],
    test_set: EvaluationSet,
    x_test: np.ndarray,
    splits: Mapping[str, Sequence[SimulatedParcel]],
) -> None:
    rows = np.random.default_rng(1).permutation(len(x_test))[:CONTRIBUTION_ROWS]
    contributions = booster.predict(
        xgb.DMatrix(x_test[rows], missing=np.nan, feature_names=list(PARCEL_FEATURE_NAMES)),
        pred_contribs=True,
        approx_contribs=True,
    )[:, :-1]
    write_report(
        directory,
        task=PARCEL_LOSS_TASK,
        metrics=metrics,
        data=test_set,
        card=model_card_info(metadata, splits),
        contributions=contributions,
        feature_names=PARCEL_FEATURE_NAMES,
        sections=alert_sections(metadata, metrics),
    )


def install(model_dir: Path, target: Path = PACKAGED_PARCEL_MODEL_DIR) -> None:
    """Make an artifact the parcel model the functions package carries."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ARTIFACT_FILES:
        shutil.copy2(model_dir / name, target / name)


def configure_train_parcels(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=60, help="days of simulated orders")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--orders-per-day", type=int, default=1000)
    parser.add_argument(
        "--fraud-scores",
        action="store_true",
        help="score the orders with the packaged fraud model (slower) so order_fraud_score is a feature",
    )
    parser.add_argument("--out", type=Path, default=ARTIFACTS_DIR, help="where versioned artifacts go")
    parser.add_argument(
        "--install", action="store_true", help="make it the parcel model the functions package carries"
    )
    parser.set_defaults(run=train_parcels_command)


def _fraud_scores(history: Sequence[Any]) -> dict[str, float]:
    """Every order's fraud score from the packaged fraud model, replayed point in time."""
    from dozor.domain.contracts import Order  # noqa: PLC0415 - only with --fraud-scores
    from dozor.domain.fraud.model import FraudModel  # noqa: PLC0415
    from dozor_training.fraud.replay import replay  # noqa: PLC0415

    replayed = replay(Order.model_validate(s.order) for s in history)
    scores = FraudModel.load().scores(replayed.matrix)
    return {oid: float(s) for oid, s in zip(replayed.order_ids, scores, strict=True)}


def train_parcels_command(args: argparse.Namespace) -> int:
    from dozor_training.fraud.simulator import SimulationConfig, simulate  # noqa: PLC0415
    from dozor_training.parcels.simulator import simulate_shipments  # noqa: PLC0415

    t0 = time.perf_counter()
    history = simulate(SimulationConfig(days=args.days, seed=args.seed, orders_per_day=args.orders_per_day))
    parcels = simulate_shipments(history, args.seed)
    t1 = time.perf_counter()
    fraud_scores = _fraud_scores(history) if args.fraud_scores else None
    t2 = time.perf_counter()
    trained = train_parcel_model(parcels, args.out, fraud_scores=fraud_scores)
    t3 = time.perf_counter()
    if args.install:
        install(trained.directory)
    metrics = trained.metadata["metrics"]
    print(
        json.dumps(
            {
                "version": trained.metadata["version"],
                "directory": str(trained.directory),
                "installed": bool(args.install),
                "parcels": len(parcels),
                "seconds": {
                    "simulate": round(t1 - t0, 1),
                    "fraud_scores": round(t2 - t1, 1),
                    "train_and_evaluate": round(t3 - t2, 1),
                },
                "likely_lost_threshold": trained.metadata["likely_lost_threshold"],
                "test_rows": metrics["test_rows"],
                "test_alerts": metrics["test_alerts"],
            },
            indent=2,
        )
    )
    return 0

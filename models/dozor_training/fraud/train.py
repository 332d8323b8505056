"""Train the fraud model: replay → time split → XGBoost → isotonic calibration → thresholds.

The data is split by time, never at random: the model is fitted on the oldest period, calibrated
and given its thresholds on the next, and judged on the newest, which it has never seen — the
way it will meet next month's orders. The artifact directory it writes is what serving loads.
With tuning, the hyperparameters are chosen first, on rolling folds of the fitting period alone
(`dozor_training.tune`); calibration and thresholds follow on the calibration split as without it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from dozor.domain.clock import DAY, from_epoch
from dozor.domain.feedback import Label
from dozor.domain.fraud.features import FEATURE_NAMES
from dozor.domain.fraud.model import PACKAGED_MODEL_DIR
from dozor.domain.fraud.rules import rules_only_score
from dozor.domain.trees import TREES_FILE
from dozor_training.evaluation import (
    LOGISTIC,
    MODEL,
    RULES_ONLY,
    ChosenThresholds,
    CostModel,
    EvaluationSet,
    day_index,
    evaluate,
    fit_logistic_baseline,
)
from dozor_training.fitting import (
    ARTIFACTS_DIR,
    MAX_ROUNDS,
    calibration_knots,
    export_booster,
    fit_booster,
    parity_rows,
)
from dozor_training.fraud.coverage import Coverage
from dozor_training.fraud.replay import ReplayResult
from dozor_training.history_rejects import Quarantine
from dozor_training.report import ModelCardInfo, Period, Section, write_report
from dozor_training.report_selection import tuning_section
from dozor_training.report_text import FRAUD_TASK
from dozor_training.thresholds import choose_thresholds_for
from dozor_training.tune import TuneConfig, TuneResult, TuningError
from dozor_training.tune import tune as tune_params

QUARANTINE_FILE = "quarantine.csv"  # the orders rows rejected under --max-invalid, in the model directory

PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "aucpr",
    "tree_method": "hist",
    "max_depth": 6,
    "eta": 0.08,
    "min_child_weight": 2,
    "subsample": 0.9,
    "colsample_bytree": 0.8,
    "lambda": 1.0,
    "nthread": 2,
    "seed": 7,
}


@dataclass(frozen=True)
class TrainingConfig:
    calibration_share: float = 0.15  # of the training period, its newest part
    test_days: float | None = None  # held-out newest days; default: 14, or a fifth of a short history
    # Thresholds come from the review team's capacity (orders a day) when it is given, else from
    # the cost model alone. Precision@k is reported at this capacity, or at 2% of a day's orders.
    review_budget_per_day: float | None = None
    cost: CostModel = field(default_factory=CostModel)
    baseline_rows: int = 200_000  # the logistic baseline fits on at most this many training rows
    contribution_rows: int = 3_000  # test rows whose feature contributions the report summarises
    data_source: str = "history files"
    simulated: bool = False


@dataclass(frozen=True)
class Periods:
    """Which orders train, calibrate and test the model, and which labels training may know.

    The model is imagined trained at ``test[0]``: it knows only labels reported before then
    (``label_cutoff``), so the newest orders before it, whose chargebacks have not arrived yet,
    are left out (``gap``) rather than taught as legitimate. Test orders are judged on every
    label, however late it came.
    """

    train: tuple[float, float]  # epoch seconds, [start, end)
    calibration: tuple[float, float]
    test: tuple[float, float]  # [start, end]
    label_cutoff: float
    gap_days: float

    def masks(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        train = (times >= self.train[0]) & (times < self.train[1])
        calibration = (times >= self.calibration[0]) & (times < self.calibration[1])
        test = (times >= self.test[0]) & (times <= self.test[1])
        return train, calibration, test

    def as_dict(self) -> dict[str, Any]:
        return {
            "train": [from_epoch(t).isoformat() for t in self.train],
            "calibration": [from_epoch(t).isoformat() for t in self.calibration],
            "test": [from_epoch(t).isoformat() for t in self.test],
            "label_cutoff": from_epoch(self.label_cutoff).isoformat(),
            "gap_days": round(self.gap_days, 2),
        }


class PeriodError(ValueError):
    """The requested dates leave a period empty or overlapping."""


def typical_label_delay_days(times: Mapping[str, float], labels: Sequence[Label]) -> float:
    """Median days from a fraudulent order to its fraud label (0 when nothing is labelled fraud)."""
    delays = [
        (label.reported_at.timestamp() - times[label.order_id]) / DAY
        for label in labels
        if label.is_fraud and label.order_id in times
    ]
    return float(np.median(delays)) if delays else 0.0


def choose_periods(
    times: np.ndarray,
    label_delay_days: float,
    config: TrainingConfig,
    *,
    train_start: datetime | None = None,
    train_end: datetime | None = None,
    test_start: datetime | None = None,
    test_end: datetime | None = None,
) -> Periods:
    """Periods from the dates given, the rest defaulted: the newest weeks test, after a label-delay gap."""
    first, last = float(times.min()), float(times.max())
    span_days = (last - first) / DAY
    test_days = config.test_days or (14.0 if span_days >= 56 else max(span_days * 0.2, 1 / 24))
    t_end = test_end.timestamp() if test_end else last
    t_start = test_start.timestamp() if test_start else t_end - test_days * DAY
    fit_start = train_start.timestamp() if train_start else first
    if train_end:
        fit_end = train_end.timestamp()
    else:
        # The gap is as long as the typical label delay, but never eats more than half of what
        # is left for training: a short history still trains, with a note in the card.
        gap = min(label_delay_days * DAY, 0.5 * (t_start - fit_start))
        fit_end = t_start - max(gap, 0.0)
    if not fit_start < fit_end <= t_start < t_end:
        a, b, c, d = (from_epoch(t).isoformat() for t in (fit_start, fit_end, t_start, t_end))
        raise PeriodError(f"periods do not line up: train [{a}, {b}), test [{c}, {d}]")
    cal_start = fit_end - config.calibration_share * (fit_end - fit_start)
    return Periods(
        train=(fit_start, cal_start),
        calibration=(cal_start, fit_end),
        test=(t_start, t_end),
        label_cutoff=t_start,
        gap_days=(t_start - fit_end) / DAY,
    )


def label_vectors(
    order_ids: Sequence[str], labels: Sequence[Label], cutoff: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fraud flags per order: as known at ``cutoff`` (for fitting), and as known in the end (for testing)."""
    reported = {label.order_id: label.reported_at.timestamp() for label in labels if label.is_fraud}
    known = np.array([reported.get(oid, np.inf) < cutoff for oid in order_ids], dtype=np.float32)
    final = np.array([oid in reported for oid in order_ids], dtype=np.float32)
    return known, final


@dataclass(frozen=True)
class TrainedModel:
    directory: Path
    metadata: dict[str, Any]


def fingerprint(order_ids: Sequence[str], labels: np.ndarray, params: Mapping[str, Any] = PARAMS) -> str:
    """What the model was trained from: the feature set, the parameters, the orders and their labels."""
    digest = hashlib.sha256(json.dumps([FEATURE_NAMES, params], sort_keys=True).encode())
    for order_id, label in zip(order_ids, labels, strict=True):
        digest.update(f"{order_id}:{int(label)}\n".encode())
    return digest.hexdigest()


def train_fraud(
    result: ReplayResult,
    labels: Sequence[Label],
    out_dir: Path = ARTIFACTS_DIR,
    config: TrainingConfig | None = None,
    periods: Periods | None = None,
    versioned: bool = True,
    *,
    quarantine: Quarantine | None = None,
    tune: TuneConfig | None = None,
    fit: Callable[..., xgb.Booster] = fit_booster,
) -> TrainedModel:
    """Train, calibrate and evaluate a fraud model on a replayed, labelled history; write its artifact.

    The artifact goes to ``out_dir/<version>`` (``versioned``) or straight into ``out_dir``.
    ``quarantine``: the orders rows rejected while reading the history (written beside the report);
    ``tune``: choose the hyperparameters first (`dozor_training.tune`) instead of using PARAMS.
    ``fit``: what fits the booster (`fitting.fit_booster`; the Spark estimator for ``--engine spark``).
    """
    config = config or TrainingConfig()
    started = time.perf_counter()
    times = result.created_at
    if periods is None:
        delay = typical_label_delay_days(dict(zip(result.order_ids, times, strict=True)), labels)
        periods = choose_periods(times, delay, config)
    train_mask, cal_mask, test_mask = periods.masks(times)
    y_known, y_final = label_vectors(result.order_ids, labels, periods.label_cutoff)
    _require_labels(train_mask, cal_mask, test_mask, y_known)
    x = result.matrix
    coverage = Coverage.of(x[train_mask])
    params, max_rounds, tuned = _hyperparameters(x[train_mask], y_known[train_mask], times[train_mask], tune)

    booster = fit(
        params, FEATURE_NAMES, x[train_mask], y_known[train_mask], x[cal_mask], y_known[cal_mask], max_rounds
    )
    rounds = booster.num_boosted_rounds()
    raw = np.asarray(booster.inplace_predict(x), dtype=np.float64)
    calibration = calibration_knots(raw[cal_mask], y_known[cal_mask])
    scores = np.clip(np.interp(raw, calibration["x"], calibration["y"]), 0, 1)
    fitted_at = time.perf_counter()
    metrics, chosen, test_set = _evaluate(result, scores, y_known, y_final, periods, config)

    metadata = _metadata(
        result, periods, y_final, chosen[MODEL], calibration, params, rounds, metrics, config
    )
    version = metadata["version"]
    directory = out_dir / version if versioned else out_dir
    directory.mkdir(parents=True, exist_ok=True)
    evaluated_at = time.perf_counter()
    quarantine = quarantine and quarantine.written_to(directory / QUARANTINE_FILE)
    metadata["data"] |= {"rejected": quarantine and quarantine.as_dict(), "coverage": coverage.as_dict()}
    if tuned is not None:
        metadata["tuning"] = tuned.as_dict()
    sections = [_data_section(coverage, quarantine), *([tuning_section(tuned, directory)] if tuned else [])]
    _write_report(
        directory, metadata, metrics, test_set, booster, x[test_mask], periods, result, y_final, sections
    )
    metadata["seconds"] = {
        "fit": round(fitted_at - started, 1),
        "evaluate": round(evaluated_at - fitted_at, 1),
        "report": round(time.perf_counter() - evaluated_at, 1),
    }
    metadata["evaluator_error"] = export_booster(booster, directory, parity_rows(x))
    (directory / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return TrainedModel(directory, metadata)


def _hyperparameters(
    x: np.ndarray, y: np.ndarray, times: np.ndarray, tune: TuneConfig | None
) -> tuple[dict[str, Any], int, TuneResult | None]:
    """The parameters and round limit of the final fit: PARAMS, or tuned on the fitting rows."""
    if tune is None:
        return PARAMS, MAX_ROUNDS, None
    try:
        tuned = tune_params(PARAMS, FEATURE_NAMES, x, y, times, tune)
    except TuningError:
        return PARAMS, MAX_ROUNDS, None  # too little fraud to compare candidates: the defaults
    return tuned.params(), tuned.max_rounds(MAX_ROUNDS), tuned


def _data_section(coverage: Coverage, quarantine: Quarantine | None) -> Section:
    """What the history held: rows rejected while reading it, and the feature families it fed."""
    lines: list[str] = []
    if quarantine is not None:
        rejected = quarantine.summary() if quarantine.rejected else "No row of the orders file was rejected."
        lines += [rejected, ""]
    lines += [
        "Available feature families: " + ", ".join(coverage.available) + ".",
        "",
        *coverage.report_lines(),
    ]
    return Section("History and feature coverage", lines)


def _metadata(
    result: ReplayResult,
    periods: Periods,
    y_final: np.ndarray,
    model: ChosenThresholds,
    calibration: Mapping[str, list[float]],
    params: Mapping[str, Any],
    rounds: int,
    metrics: Mapping[str, Any],
    config: TrainingConfig,
) -> dict[str, Any]:
    """metadata.json: what serving loads (features, thresholds, calibration) and how it was made."""
    times = result.created_at
    data_fingerprint = fingerprint(result.order_ids, y_final, params)
    trained_at = datetime.now(UTC)
    version = f"fraud-{trained_at:%Y%m%d}-{data_fingerprint[:8]}"
    return {
        "version": version,
        "kind": "fraud",
        "trained_at": trained_at.isoformat(),
        "feature_names": list(FEATURE_NAMES),
        "thresholds": model.pair(),
        "threshold_selection": model.selection(),
        "calibration": calibration,
        "data_fingerprint": data_fingerprint,
        "data": {
            "orders": len(result),
            "labelled_fraud": int(y_final.sum()),
            "periods": periods.as_dict(),
            "rows": {name: int(m.sum()) for name, m in zip(SPLITS, periods.masks(times), strict=True)},
        },
        "params": dict(params) | {"rounds": rounds},
        "xgboost_version": xgb.__version__,
        "metrics": {"test": _headline(metrics)},
        "config": asdict(config),
    }


SPLITS = ("train", "calibration", "test")


def _require_labels(train: np.ndarray, cal: np.ndarray, test: np.ndarray, y_known: np.ndarray) -> None:
    """Fitting needs known fraud in train and calibration; judging needs test orders at all."""
    for name, mask in (("train", train), ("calibration", cal)):
        if not mask.any() or not y_known[mask].any():
            raise PeriodError(f"the {name} period has no orders labelled fraud; give it more history")
    if not test.any():
        raise PeriodError("the test period has no orders")


def _evaluate(
    result: ReplayResult,
    scores: np.ndarray,
    y_known: np.ndarray,
    y_final: np.ndarray,
    periods: Periods,
    config: TrainingConfig,
) -> tuple[dict[str, Any], dict[str, ChosenThresholds], EvaluationSet]:
    """Thresholds on the calibration split, then every metric on the test split, vs both baselines."""
    train_mask, cal_mask, test_mask = periods.masks(result.created_at)
    x = result.matrix
    rule_scores = np.array([rules_only_score(h) for h in result.rule_hits])
    train_rows = np.flatnonzero(train_mask)
    if len(train_rows) > config.baseline_rows:
        train_rows = np.sort(np.random.default_rng(0).choice(train_rows, config.baseline_rows, replace=False))
    logistic = fit_logistic_baseline(x[train_rows], y_known[train_rows])
    days = day_index(result.created_at)
    buyers = np.asarray(result.buyer_ids)

    def split(mask: np.ndarray, y: np.ndarray, period: tuple[float, float]) -> EvaluationSet:
        return EvaluationSet(
            y=y[mask],
            days=days[mask],
            scores={MODEL: scores[mask], RULES_ONLY: rule_scores[mask], LOGISTIC: logistic(x[mask])},
            amounts_rub=result.amounts_rub[mask],
            entity_ids=buyers[mask],
            period_days=(period[1] - period[0]) / DAY,
        )

    calibration_set = split(cal_mask, y_known, periods.calibration)
    chosen = choose_thresholds_for(
        calibration_set, cost=config.cost, review_budget_per_day=config.review_budget_per_day
    )
    test_set = split(test_mask, y_final, periods.test)
    k = config.review_budget_per_day or max(1.0, 0.02 * len(test_set.y) / test_set.day_count)
    metrics = evaluate(test_set, thresholds=chosen, k_per_day=round(k), cost=config.cost)
    return metrics, chosen, test_set


def _headline(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers worth carrying in metadata.json; metrics.json beside it has everything."""
    scorers = metrics["scorers"]
    return {
        "rows": metrics["rows"],
        "positive_rate": metrics["positive_rate"],
        **{
            name: {
                "average_precision": m["average_precision"],
                "roc_auc": m["roc_auc"],
                "recall_at_1pct_fpr": m["recall_at_fpr"]["recall"],
                "precision_at_k": m["precision_at_k"]["overall"],
                "decisions": m.get("decisions"),
            }
            for name, m in scorers.items()
        },
    }


def _write_report(
    directory: Path,
    metadata: Mapping[str, Any],
    metrics: Mapping[str, Any],
    test_set: EvaluationSet,
    booster: xgb.Booster,
    x_test: np.ndarray,
    periods: Periods,
    result: ReplayResult,
    y_final: np.ndarray,
    sections: Sequence[Section] = (),
) -> None:
    config = metadata["config"]
    rows = np.random.default_rng(1).permutation(len(x_test))[: config["contribution_rows"]]
    contributions = booster.predict(
        xgb.DMatrix(x_test[rows], missing=np.nan, feature_names=list(FEATURE_NAMES)),
        pred_contribs=True,
        approx_contribs=True,
    )[:, :-1]
    days = day_index(result.created_at)
    masks = dict(zip(SPLITS, periods.masks(result.created_at), strict=True))
    card = ModelCardInfo(
        name="dozor-fraud",
        version=metadata["version"],
        intended_use=(
            "Real-time risk decisions (APPROVE / REVIEW / DECLINE) on marketplace orders at checkout "
            "and on the order bus, with a reviewer queue for REVIEW."
        ),
        data_source=config["data_source"],
        simulated=config["simulated"],
        periods={name: Period.of(days[m], y_final[m]) for name, m in masks.items()},
        feature_names=FEATURE_NAMES,
        features_defined_in="functions/dozor/domain/fraud/features.py",
        trained_at=metadata["trained_at"],
        training={
            "rounds": metadata["params"]["rounds"],
            "max_depth": metadata["params"]["max_depth"],
            "eta": metadata["params"]["eta"],
            "label_gap_days": periods.gap_days,
            "label_cutoff": periods.as_dict()["label_cutoff"],
        },
        blind_spots=(
            "fraud that leaves no trace in the order or the history of its buyer, card, device, ip, "
            "email, address or seller",
            "labels reported after the training cut-off: orders of the last gap before it are left out",
        ),
    )
    write_report(
        directory,
        task=FRAUD_TASK,
        metrics=metrics,
        data=test_set,
        card=card,
        contributions=contributions,
        feature_names=FEATURE_NAMES,
        sections=sections,
    )


def install(model_dir: Path, target: Path = PACKAGED_MODEL_DIR) -> None:
    """Make an artifact the one the functions package carries."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("model.ubj", TREES_FILE, "metadata.json"):
        shutil.copy2(model_dir / name, target / name)

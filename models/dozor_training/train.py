"""Train the fraud model: replay → time split → XGBoost → isotonic calibration → thresholds.

The data is split by time, never at random: the model is fitted on the oldest period, calibrated
and given its thresholds on the next, and judged on the newest, which it has never seen — the
way it will meet next month's orders. The artifact directory it writes is what serving loads.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, roc_auc_score

from dozor.domain.features import FEATURE_NAMES
from dozor.domain.feedback import Label
from dozor.domain.model import PACKAGED_MODEL_DIR
from dozor.domain.rules import rules_only_score
from dozor_training.replay import ReplayResult

ARTIFACTS_DIR = Path(__file__).resolve().parents[1] / "artifacts"

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
MAX_ROUNDS = 400


DAY = 86_400.0


@dataclass(frozen=True)
class TrainingConfig:
    calibration_share: float = 0.15  # of the training period, its newest part
    test_days: float | None = None  # held-out newest days; default: 14, or a fifth of a short history
    review_rate: float = 0.02  # share of orders the review team can look at
    decline_probability: float = 0.8  # calibrated P(fraud) from which an order is declined outright
    min_review_probability: float = 0.03


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
            "train": [_iso(t) for t in self.train],
            "calibration": [_iso(t) for t in self.calibration],
            "test": [_iso(t) for t in self.test],
            "label_cutoff": _iso(self.label_cutoff),
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
        raise PeriodError(
            f"periods do not line up: train [{_iso(fit_start)}, {_iso(fit_end)}), "
            f"test [{_iso(t_start)}, {_iso(t_end)}]"
        )
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


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def fingerprint(order_ids: Sequence[str], labels: np.ndarray) -> str:
    """What the model was trained from: the feature set, the parameters, the orders and their labels."""
    digest = hashlib.sha256(json.dumps([FEATURE_NAMES, PARAMS], sort_keys=True).encode())
    for order_id, label in zip(order_ids, labels, strict=True):
        digest.update(f"{order_id}:{int(label)}\n".encode())
    return digest.hexdigest()


def _fit_booster(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray
) -> xgb.Booster:
    train = xgb.DMatrix(x_train, label=y_train, missing=np.nan, feature_names=list(FEATURE_NAMES))
    valid = xgb.DMatrix(x_val, label=y_val, missing=np.nan, feature_names=list(FEATURE_NAMES))
    return xgb.train(
        PARAMS,
        train,
        MAX_ROUNDS,
        evals=[(valid, "calibration")],
        early_stopping_rounds=40,
        verbose_eval=False,
    )


def _calibration(raw: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """Isotonic map from booster output to observed fraud rate, stored as interpolation knots."""
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
    return {"x": [float(v) for v in iso.X_thresholds_], "y": [float(v) for v in iso.y_thresholds_]}


def _thresholds(scores: np.ndarray, y: np.ndarray, config: TrainingConfig) -> dict[str, float]:
    """DECLINE where a calibrated score says fraud is this likely; REVIEW fills the review budget below it."""
    decline = config.decline_probability
    below = np.sort(scores[scores < decline])[::-1]
    budget = int(config.review_rate * len(scores))
    review = float(below[budget - 1]) if 0 < budget <= len(below) else decline
    # Never review on noise: below this the review team would only see legitimate orders.
    review = min(max(review, config.min_review_probability), decline)
    return {"review": round(review, 6), "decline": round(decline, 6)}


def _evaluate(
    scores: np.ndarray, rule_scores: np.ndarray, y: np.ndarray, thresholds: Mapping[str, float]
) -> dict[str, float]:
    flagged = scores >= thresholds["review"]
    declined = scores >= thresholds["decline"]
    return {
        "orders": len(y),
        "fraud_rate": float(y.mean()),
        "average_precision": float(average_precision_score(y, scores)),
        "roc_auc": float(roc_auc_score(y, scores)),
        "rules_only_average_precision": float(average_precision_score(y, rule_scores)),
        "rules_only_roc_auc": float(roc_auc_score(y, rule_scores)),
        "review_or_decline_rate": float(flagged.mean()),
        "recall_at_review": float(flagged[y == 1].mean()),
        "precision_at_review": float(y[flagged].mean()) if flagged.any() else 0.0,
        "decline_rate": float(declined.mean()),
        "precision_at_decline": float(y[declined].mean()) if declined.any() else 0.0,
    }


def train_fraud(
    result: ReplayResult,
    labels: Sequence[Label],
    out_dir: Path = ARTIFACTS_DIR,
    config: TrainingConfig | None = None,
    periods: Periods | None = None,
) -> TrainedModel:
    """Train, calibrate and evaluate a fraud model on a replayed, labelled history; write its artifact."""
    config = config or TrainingConfig()
    times = result.created_at
    if periods is None:
        delay = typical_label_delay_days(dict(zip(result.order_ids, times, strict=True)), labels)
        periods = choose_periods(times, delay, config)
    train_mask, cal_mask, test_mask = periods.masks(times)
    y_known, y_final = label_vectors(result.order_ids, labels, periods.label_cutoff)
    for name, mask, y in (("train", train_mask, y_known), ("calibration", cal_mask, y_known)):
        if not mask.any() or not y[mask].any():
            raise PeriodError(f"the {name} period has no orders labelled fraud; give it more history")
    if not test_mask.any():
        raise PeriodError("the test period has no orders")
    x = result.matrix

    fitted = _fit_booster(x[train_mask], y_known[train_mask], x[cal_mask], y_known[cal_mask])
    rounds = fitted.best_iteration + 1
    # Keep only the trees early stopping chose: serving must not walk the overfitted tail.
    booster = fitted[:rounds]
    raw = np.asarray(booster.inplace_predict(x), dtype=np.float64)
    calibration = _calibration(raw[cal_mask], y_known[cal_mask])
    scores = np.clip(np.interp(raw, calibration["x"], calibration["y"]), 0, 1)
    thresholds = _thresholds(scores[cal_mask], y_known[cal_mask], config)
    rule_scores = np.array([rules_only_score(h) for h in result.rule_hits])

    data_fingerprint = fingerprint(result.order_ids, y_final)
    trained_at = datetime.now(UTC)
    version = f"fraud-{trained_at:%Y%m%d}-{data_fingerprint[:8]}"
    metadata: dict[str, Any] = {
        "version": version,
        "kind": "fraud",
        "trained_at": trained_at.isoformat(),
        "feature_names": list(FEATURE_NAMES),
        "thresholds": thresholds,
        "calibration": calibration,
        "data_fingerprint": data_fingerprint,
        "data": {
            "orders": len(result),
            "labelled_fraud": int(y_final.sum()),
            "periods": periods.as_dict(),
            "rows": {
                "train": int(train_mask.sum()),
                "calibration": int(cal_mask.sum()),
                "test": int(test_mask.sum()),
            },
        },
        "params": PARAMS | {"rounds": rounds},
        "xgboost_version": xgb.__version__,
        "metrics": {
            "test": _evaluate(scores[test_mask], rule_scores[test_mask], y_final[test_mask], thresholds)
        },
        "config": config.__dict__,
    }
    directory = out_dir / version
    directory.mkdir(parents=True, exist_ok=True)
    booster.save_model(directory / "model.ubj")
    (directory / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return TrainedModel(directory, metadata)


def install(model_dir: Path, target: Path = PACKAGED_MODEL_DIR) -> None:
    """Make an artifact the one the functions package carries."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("model.ubj", "metadata.json"):
        shutil.copy2(model_dir / name, target / name)

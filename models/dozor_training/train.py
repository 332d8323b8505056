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

from dozor.domain.contracts import Order
from dozor.domain.features import FEATURE_NAMES
from dozor.domain.model import PACKAGED_MODEL_DIR
from dozor.domain.rules import rules_only_score
from dozor_training.replay import ReplayResult, replay

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


@dataclass(frozen=True)
class TrainingConfig:
    calibration_share: float = 0.15  # of the period, after the training part
    test_share: float = 0.2  # the newest part, held out
    review_rate: float = 0.02  # share of orders the review team can look at
    decline_probability: float = 0.8  # calibrated P(fraud) from which an order is declined outright
    min_review_probability: float = 0.03


@dataclass(frozen=True)
class TrainedModel:
    directory: Path
    metadata: dict[str, Any]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def fingerprint(order_ids: Sequence[str], labels: np.ndarray) -> str:
    digest = hashlib.sha256()
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
    orders: Sequence[Order],
    is_fraud: Mapping[str, bool],
    out_dir: Path = ARTIFACTS_DIR,
    config: TrainingConfig | None = None,
    replayed: ReplayResult | None = None,
) -> TrainedModel:
    """Train, calibrate and evaluate a fraud model on a labelled history; write its artifact."""
    config = config or TrainingConfig()
    result = replayed or replay(orders)
    by_id = {o.order_id: o for o in orders}
    y = np.array([bool(is_fraud.get(oid, False)) for oid in result.order_ids], dtype=np.float32)
    times = np.array([by_id[oid].created_at.timestamp() for oid in result.order_ids])
    start, end = times.min(), times.max()
    cal_start = start + (end - start) * (1 - config.test_share - config.calibration_share)
    test_start = start + (end - start) * (1 - config.test_share)
    train_mask, test_mask = times < cal_start, times >= test_start
    cal_mask = ~train_mask & ~test_mask
    x = result.matrix

    fitted = _fit_booster(x[train_mask], y[train_mask], x[cal_mask], y[cal_mask])
    rounds = fitted.best_iteration + 1
    # Keep only the trees early stopping chose: serving must not walk the overfitted tail.
    booster = fitted[:rounds]
    raw = np.asarray(booster.inplace_predict(x), dtype=np.float64)
    calibration = _calibration(raw[cal_mask], y[cal_mask])
    scores = np.clip(np.interp(raw, calibration["x"], calibration["y"]), 0, 1)
    thresholds = _thresholds(scores[cal_mask], y[cal_mask], config)
    rule_scores = np.array([rules_only_score(h) for h in result.rule_hits])

    data_fingerprint = fingerprint(result.order_ids, y)
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
            "orders": len(result.order_ids),
            "fraud": int(y.sum()),
            "train": [_iso(start), _iso(cal_start)],
            "calibration": [_iso(cal_start), _iso(test_start)],
            "test": [_iso(test_start), _iso(end)],
        },
        "params": PARAMS | {"rounds": rounds},
        "xgboost_version": xgb.__version__,
        "metrics": {"test": _evaluate(scores[test_mask], rule_scores[test_mask], y[test_mask], thresholds)},
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

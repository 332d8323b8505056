"""The fitting steps both trainers share: an early-stopped XGBoost fit and an isotonic calibration.

The fraud and the parcel-loss models differ in their rows and parameters, not in how a booster is
fitted, cut to its best round and calibrated, so that lives here once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression

ARTIFACTS_DIR = Path(__file__).resolve().parents[1] / "artifacts"  # models/artifacts: versioned outputs
MAX_ROUNDS = 400


def fit_booster(
    params: Mapping[str, Any],
    feature_names: Sequence[str],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    max_rounds: int = MAX_ROUNDS,
) -> xgb.Booster:
    """XGBoost with early stopping on the calibration split, cut to the rounds it chose.

    Serving must not walk the overfitted tail, so only the best iteration's trees are kept.
    """
    train = xgb.DMatrix(x_train, label=y_train, missing=np.nan, feature_names=list(feature_names))
    valid = xgb.DMatrix(x_val, label=y_val, missing=np.nan, feature_names=list(feature_names))
    fitted = xgb.train(
        dict(params),
        train,
        max_rounds,
        evals=[(valid, "calibration")],
        early_stopping_rounds=40,
        verbose_eval=False,
    )
    return fitted[: fitted.best_iteration + 1]


def calibration_knots(raw: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """Isotonic map from booster output to the observed positive rate, stored as interpolation knots."""
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
    return {"x": [float(v) for v in iso.X_thresholds_], "y": [float(v) for v in iso.y_thresholds_]}

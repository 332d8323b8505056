"""The calibration map keeps the booster's ranking: isotonic steps are not allowed to tie orders."""

from __future__ import annotations

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score

from dozor_training.fitting import TIE_BREAK, calibration_knots


def few_positives(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A calibration split like a short history's: 900 orders, 6 of them fraud."""
    rng = np.random.default_rng(seed)
    raw = rng.beta(1, 30, 900)
    y = np.zeros(900)
    y[np.argsort(raw)[-40:][rng.choice(40, 6, replace=False)]] = 1.0
    return raw, y


def test_calibrated_scores_rise_strictly_with_the_raw_score() -> None:
    raw, y = few_positives()
    knots = calibration_knots(raw, y)

    later = np.sort(np.random.default_rng(1).beta(1, 30, 5000))  # new orders, the full range too
    calibrated = np.interp(np.concatenate([[0.0], later, [1.0]]), knots["x"], knots["y"])

    assert np.all(np.diff(calibrated) > 0)
    assert knots["x"][0] == 0.0 and knots["x"][-1] == 1.0
    assert min(knots["y"]) >= 0.0 and max(knots["y"]) <= 1.0


def test_calibration_moves_each_probability_by_at_most_the_tie_break() -> None:
    raw, y = few_positives()
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
    knots = calibration_knots(raw, y)

    calibrated = np.interp(raw, knots["x"], knots["y"])

    assert np.max(np.abs(calibrated - iso.predict(raw))) <= TIE_BREAK + 1e-12
    assert len(np.unique(iso.predict(raw))) < 10 < len(np.unique(calibrated))  # steps, then none


def test_ranking_metrics_of_calibrated_scores_are_the_raw_scores() -> None:
    raw, y = few_positives(seed=2)
    knots = calibration_knots(raw, y)

    assert average_precision_score(y, np.interp(raw, knots["x"], knots["y"])) == average_precision_score(
        y, raw
    )

"""The trained fraud model as serving sees it: its trees, its calibration and thresholds.

An artifact is a directory with ``model.ubj`` (the XGBoost booster, for training and reports),
``trees.npz`` (the same trees as arrays, which serving evaluates with NumPy alone:
`dozor.domain.trees`) and ``metadata.json`` (version, feature names in order, isotonic calibration
knots, REVIEW/DECLINE thresholds, metrics, the fingerprint of the data it was trained on). Loading
refuses an artifact whose feature list differs from the code's, or whose trees are missing or read
another number of features: a model must never silently read features in the wrong columns.
Serving never imports xgboost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dozor.domain.errors import ModelMismatchError
from dozor.domain.fraud.features import FEATURE_NAMES
from dozor.domain.trees import Evaluation, TreeEnsemble, load_artifact_trees

PACKAGED_MODEL_DIR = Path(__file__).resolve().parents[2] / "model"


@dataclass(frozen=True)
class Thresholds:
    review: float
    decline: float


def _require_features(metadata: dict[str, Any]) -> None:
    if tuple(metadata["feature_names"]) != FEATURE_NAMES:
        raise ModelMismatchError(
            f"model {metadata.get('version')} expects {len(metadata['feature_names'])} features "
            f"that differ from the {len(FEATURE_NAMES)} this code computes; retrain it"
        )


class FraudModel:
    def __init__(self, trees: TreeEnsemble, metadata: dict[str, Any]) -> None:
        _require_features(metadata)
        if trees.num_features != len(FEATURE_NAMES):
            raise ModelMismatchError(
                f"model {metadata.get('version')}: its trees read {trees.num_features} features, "
                f"not the {len(FEATURE_NAMES)} this code computes"
            )
        self.trees = trees
        self.metadata = metadata
        self.version: str = metadata["version"]
        self.thresholds = Thresholds(**metadata["thresholds"])
        calibration = metadata["calibration"]
        self._cal_x = np.asarray(calibration["x"], dtype=np.float64)
        self._cal_y = np.asarray(calibration["y"], dtype=np.float64)
        # The last rows evaluated (their bytes) and what the walk gave: scoring asks for the scores
        # and then the contributions of the same rows, which one walk answers.
        self._last: tuple[bytes, Evaluation] | None = None

    @classmethod
    def load(cls, directory: Path = PACKAGED_MODEL_DIR) -> FraudModel:
        metadata = json.loads((directory / "metadata.json").read_text())
        _require_features(metadata)  # first: a stale artifact is told to retrain, whatever its files
        return cls(load_artifact_trees(directory, metadata), metadata)

    def raw_scores(self, rows: np.ndarray) -> np.ndarray:
        """Uncalibrated probabilities of a 2-D float32 matrix (the booster's ``inplace_predict``)."""
        return self.trees.output(self._evaluate(rows).margin)

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        calibrated = np.asarray(np.interp(raw, self._cal_x, self._cal_y), dtype=np.float64)
        return calibrated.clip(0.0, 1.0)

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of fraud."""
        return self.calibrate(self.raw_scores(rows))

    def contributions(self, rows: np.ndarray) -> np.ndarray:
        """Per-feature contributions to the margin (log-odds), one row per order, bias excluded.

        Saabas path contributions, as XGBoost's ``approx_contribs``: what a reviewer needs is the
        ranking, and they come from the same walk of the trees as the score.
        """
        return self._evaluate(rows).contributions[:, :-1]

    def scores_and_contributions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`scores` and `contributions` of the same rows from one walk of the trees (what scoring
        calls: no cache to key, since nobody asks for these rows again)."""
        evaluation = self.trees.evaluate(rows)
        if len(evaluation.margin) == 1:  # one order (checkout): the same numbers, in Python floats
            raw = self.trees.output_one(float(evaluation.margin[0]))
            score = min(max(float(np.interp(raw, self._cal_x, self._cal_y)), 0.0), 1.0)  # as `calibrate`
            return np.array([score]), evaluation.contributions[:, :-1]
        return self.calibrate(self.trees.output(evaluation.margin)), evaluation.contributions[:, :-1]

    def _evaluate(self, rows: np.ndarray) -> Evaluation:
        x = np.ascontiguousarray(rows, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        key = x.shape[0].to_bytes(4, "little") + x.tobytes()
        last = self._last
        if last is not None and last[0] == key:
            return last[1]
        evaluation = self.trees.evaluate(x)
        evaluation.margin.flags.writeable = False
        evaluation.contributions.flags.writeable = False
        self._last = (key, evaluation)
        return evaluation

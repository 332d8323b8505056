"""The parcel-loss model as serving sees it: features of a parcel in transit and a calibrated P(lost).

The same `parcel_features` builds training rows (snapshots of simulated parcels at sweep times)
and serving rows (the sweeper re-scoring overdue parcels), so the two cannot drift. An artifact is
a directory with `model.ubj` (the booster, for training and reports), `trees.npz` (the same trees
as arrays, which serving evaluates with NumPy alone: `dozor.domain.trees`), `metadata.json`
(version, feature names, isotonic calibration knots, the LIKELY_LOST threshold, metrics) and
`lanes.json` (the lane deadlines it was trained with, which serving uses too: due times and
features must come from the same norms).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from dozor.domain.contracts import RUB_PER_UNIT
from dozor.domain.errors import ModelMismatchError
from dozor.domain.geography import remoteness_tier
from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.shipments import STAGE_RANK, Parcel, ParcelStatus
from dozor.domain.trees import TreeEnsemble, load_artifact_trees

PACKAGED_PARCEL_MODEL_DIR = Path(__file__).resolve().parents[2] / "parcel_model"

NAN = math.nan
HOUR = 3600.0

# Categories as the marketplace names them; an unknown one is scored as missing.
PARCEL_CATEGORIES: tuple[str, ...] = (
    "clothing",
    "shoes",
    "home",
    "beauty",
    "accessories",
    "toys",
    "sports",
    "auto_parts",
    "electronics",
    "phones",
    "computers",
    "jewelry",
    "gift_cards",
)
_CATEGORY_CODE = {name: i for i, name in enumerate(PARCEL_CATEGORIES)}

PARCEL_FEATURE_NAMES: tuple[str, ...] = (
    "destination_remoteness",  # 0 Moscow / St Petersburg .. 3 Far East, far North
    "stage",  # the status's rank in the journey
    "in_customs",
    "hours_since_last_scan",
    "silence_over_lane_due",  # hours silent / the lane's p95 gap for this stage
    "silence_over_lane_stalled",  # hours silent / the lane's p99 gap for this stage
    "lane_due_hours",
    "parcel_age_days",  # since the first scan
    "hours_in_status",
    "scans_seen",
    "customs_dwell_hours",
    "failed_attempts",
    "exceptions",
    "declared_value_rub",
    "category",
    "lane_loss_rate",
    "seller_loss_rate_30d",
    "order_fraud_score",
)


def _nan_if_none(value: float | None) -> float:
    return NAN if value is None else float(value)


def parcel_features(
    parcel: Parcel,
    now: datetime,
    deadlines: LaneDeadlines,
    *,
    seller_loss_rate_30d: float | None = None,
    order_fraud_score: float | None = None,
    remoteness: int | None = None,
) -> np.ndarray:
    """One float32 row in `PARCEL_FEATURE_NAMES` order; missing values are NaN.

    `order_fraud_score` defaults to the score kept on the parcel; `remoteness` to the tier of the
    lane's destination region.
    """
    tier = remoteness if remoteness is not None else remoteness_tier(parcel.lane.destination_region)
    silent_hours = max((now - parcel.last_scan_at).total_seconds(), 0.0) / HOUR
    due_hours = deadlines.due_after(parcel.lane, parcel.status).total_seconds() / HOUR
    stalled_hours = deadlines.stalled_after(parcel.lane, parcel.status).total_seconds() / HOUR
    dwell = parcel.customs_dwell(now)
    value_rub = None
    if parcel.declared_value is not None:
        value_rub = parcel.declared_value * RUB_PER_UNIT.get(parcel.currency or "RUB", NAN)
    fraud = order_fraud_score if order_fraud_score is not None else parcel.order_fraud_score
    row = (
        _nan_if_none(tier),
        float(STAGE_RANK[parcel.status]),
        float(parcel.status == ParcelStatus.CUSTOMS),
        silent_hours,
        silent_hours / due_hours,
        silent_hours / stalled_hours,
        due_hours,
        max((now - parcel.first_scan_at).total_seconds(), 0.0) / 86_400.0,
        max((now - parcel.status_since).total_seconds(), 0.0) / HOUR,
        float(len(parcel.scans)),
        NAN if dwell is None else dwell.total_seconds() / HOUR,
        float(parcel.failed_attempts),
        float(parcel.exceptions),
        _nan_if_none(value_rub),
        _nan_if_none(_CATEGORY_CODE.get(parcel.category or "")),
        _nan_if_none(deadlines.loss_rate(parcel.lane)),
        _nan_if_none(seller_loss_rate_30d),
        _nan_if_none(fraud),
    )
    return np.asarray(row, dtype=np.float32)


def _require_features(metadata: dict[str, Any]) -> None:
    if tuple(metadata["feature_names"]) != PARCEL_FEATURE_NAMES:
        raise ModelMismatchError(
            f"parcel model {metadata.get('version')} was trained on other features than "
            "this code computes; retrain it"
        )


@dataclass
class ParcelLossModel:
    """A trained parcel-loss model's trees with its calibration, threshold and lane deadlines."""

    trees: TreeEnsemble
    metadata: dict[str, Any]
    deadlines: LaneDeadlines

    def __post_init__(self) -> None:
        _require_features(self.metadata)
        if self.trees.num_features != len(PARCEL_FEATURE_NAMES):
            raise ModelMismatchError(
                f"parcel model {self.metadata.get('version')}: its trees read {self.trees.num_features} "
                f"features, not the {len(PARCEL_FEATURE_NAMES)} this code computes"
            )
        calibration = self.metadata["calibration"]
        self._cal_x = np.asarray(calibration["x"], dtype=np.float64)
        self._cal_y = np.asarray(calibration["y"], dtype=np.float64)

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def likely_lost_threshold(self) -> float:
        return float(self.metadata["likely_lost_threshold"])

    @classmethod
    def load(cls, directory: Path = PACKAGED_PARCEL_MODEL_DIR) -> ParcelLossModel:
        metadata = json.loads((directory / "metadata.json").read_text())
        _require_features(metadata)  # first: a stale artifact is told to retrain, whatever its files
        return cls(load_artifact_trees(directory, metadata), metadata, LaneDeadlines.load(directory))

    def risk(self, rows: np.ndarray) -> np.ndarray:
        """Calibrated probabilities that each parcel ends lost, for a 2-D float32 matrix."""
        if rows.ndim == 1:
            rows = rows.reshape(1, -1)
        raw = self.trees.predict(rows)
        return np.asarray(np.interp(raw, self._cal_x, self._cal_y), dtype=np.float64).clip(0.0, 1.0)

    def risk_of(
        self,
        parcel: Parcel,
        now: datetime,
        *,
        seller_loss_rate_30d: float | None = None,
        order_fraud_score: float | None = None,
    ) -> float:
        """The calibrated loss risk of one parcel now."""
        row = parcel_features(
            parcel,
            now,
            self.deadlines,
            seller_loss_rate_30d=seller_loss_rate_30d,
            order_fraud_score=order_fraud_score,
        )
        return float(self.risk(row.reshape(1, -1))[0])

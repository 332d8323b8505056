"""Model selection: rolling time-ordered folds, a budget, and the training that uses the choice."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from dozor.domain.feedback import Label
from dozor.domain.fraud.features import FEATURE_INDEX, FEATURE_NAMES
from dozor_training.fraud.replay import ReplayResult
from dozor_training.fraud.train import PARAMS, TrainingConfig, train_fraud
from dozor_training.tune import SEARCH_SPACE, TuneConfig, candidates, rolling_blocks, tune

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

T0 = datetime(2026, 10, 1, tzinfo=UTC).timestamp()
ROUNDS = 60  # enough for this signal; keeps each candidate to a second or two
QUICK = TuneConfig(max_candidates=4, max_rounds=ROUNDS)
SIGNAL = ("amount_rub", "buyer_orders_24h", "seller_orders_7d", "local_hour")


def synthetic(n: int = 6000, days: int = 60, seed: int = 0) -> tuple[ReplayResult, list[Label]]:
    """A replayed history whose fraud depends on an interaction of four features; the rest are NaN."""
    rng = np.random.default_rng(seed)
    times = np.sort(T0 + rng.uniform(0, days * 86400, n))
    x = np.full((n, len(FEATURE_NAMES)), np.nan, dtype=np.float32)
    amount, burst = rng.lognormal(7, 1, n), rng.poisson(1.0, n)
    x[:, FEATURE_INDEX["amount_rub"]] = amount
    x[:, FEATURE_INDEX["buyer_orders_24h"]] = burst
    x[:, FEATURE_INDEX["seller_orders_7d"]] = rng.poisson(30, n)
    x[:, FEATURE_INDEX["local_hour"]] = rng.uniform(0, 24, n)
    x[:, FEATURE_INDEX["channel"]] = 1.0  # sent, and always the same: constant
    logit = -5.0 + 2.2 * ((amount > 3000) & (burst >= 2)) + 1.5 * (x[:, FEATURE_INDEX["local_hour"]] < 5)
    fraud = rng.random(n) < 1 / (1 + np.exp(-logit))
    ids = [f"o{i}" for i in range(n)]
    labels = [
        Label(ids[i], True, datetime.fromtimestamp(times[i], UTC) + timedelta(days=2))
        for i in np.flatnonzero(fraud)
    ]
    result = ReplayResult(ids, times, amount, [f"b{i % 500}" for i in range(n)], x, [[] for _ in range(n)])
    return result, labels


def test_rolling_folds_validate_on_the_block_after_everything_they_fit_on() -> None:
    blocks = rolling_blocks(1000, 3)

    assert [start for _, start, _ in blocks] == [250, 500, 750]
    for fit_end, start, end in blocks:
        assert fit_end <= start < end  # fit rows 0..fit_end, all older than the validation block
    assert blocks[-1][2] == 1000
    assert [fit_end for fit_end, _, _ in blocks] == sorted(fit_end for fit_end, _, _ in blocks)  # expanding


def test_candidates_start_from_the_current_parameters_and_never_repeat() -> None:
    points = [p for _, p in zip(range(40), candidates(PARAMS, seed=3), strict=False)]

    assert points[0] == {name: PARAMS[name] for name in SEARCH_SPACE}
    assert len({tuple(p.values()) for p in points}) == 40
    assert all(p[name] in SEARCH_SPACE[name] for p in points for name in SEARCH_SPACE)


def test_tuning_keeps_the_defaults_unless_a_candidate_validates_better() -> None:
    result, labels = synthetic()
    y = np.isin(result.order_ids, [label.order_id for label in labels]).astype(np.float32)

    tuned = tune(PARAMS, FEATURE_NAMES, result.matrix, y, result.created_at, QUICK)

    assert tuned.default.params == {name: PARAMS[name] for name in SEARCH_SPACE}
    assert tuned.chosen.score == max(t.score for t in tuned.trials) >= tuned.default.score
    assert len(tuned.trials) == QUICK.max_candidates and tuned.stopped_by == "candidates"
    starts = [f.validation_start for f in tuned.folds]
    assert starts == sorted(starts) and len(starts) == 3
    assert tuned.params() == PARAMS | tuned.chosen.params
    assert all(0 < t.rounds <= ROUNDS for t in tuned.trials)
    assert len(tuned.chosen.curve) >= tuned.chosen.rounds


def test_with_no_budget_only_the_defaults_are_tried() -> None:
    result, labels = synthetic(n=3000)
    y = np.isin(result.order_ids, [label.order_id for label in labels]).astype(np.float32)

    tuned = tune(
        PARAMS,
        FEATURE_NAMES,
        result.matrix,
        y,
        result.created_at,
        TuneConfig(budget_seconds=0, max_rounds=ROUNDS),
    )

    assert [t.params for t in tuned.trials] == [tuned.default.params]
    assert tuned.chosen is tuned.default
    assert tuned.stopped_by == "budget"


def test_training_with_tuning_fits_the_chosen_parameters_then_calibrates_and_reports(tmp_path: Path) -> None:
    result, labels = synthetic()

    trained = train_fraud(
        result,
        labels,
        tmp_path,
        TrainingConfig(),
        versioned=False,
        tune=TuneConfig(max_candidates=3, max_rounds=ROUNDS),
    )

    metadata = trained.metadata
    tuning = metadata["tuning"]
    assert {k: metadata["params"][k] for k in SEARCH_SPACE} == tuning["chosen"]["params"]
    assert tuning["candidates"] == 3 and len(tuning["chosen"]["curve"]) >= tuning["chosen"]["rounds"]
    # Calibration and thresholds still come from the calibration split, after tuning.
    assert metadata["threshold_selection"]["method"] == "cost"
    assert json.loads((tmp_path / "metadata.json").read_text())["calibration"] == metadata["calibration"]
    report = (tmp_path / "report.md").read_text()
    assert "## Model selection" in report and "rolling-origin folds" in report
    assert (tmp_path / "tuning.png").read_bytes()[:4] == b"\x89PNG"
    test = metadata["metrics"]["test"]
    assert test["model"]["average_precision"] > test["rules_only"]["average_precision"]


def test_constant_columns_are_reported_not_silent(tmp_path: Path) -> None:
    result, labels = synthetic(n=3000)

    trained = train_fraud(result, labels, tmp_path, TrainingConfig(), versioned=False)

    coverage = trained.metadata["data"]["coverage"]
    assert "channel" in coverage["constant_features"]  # one value throughout
    assert set(SIGNAL).isdisjoint(coverage["constant_features"])
    assert len(coverage["constant_features"]) == len(FEATURE_NAMES) - len(SIGNAL)
    assert coverage["unavailable_families"][:2] == ["items", "buyer account"]
    assert "tuning" not in trained.metadata
    assert "96 held one value" in (tmp_path / "report.md").read_text()

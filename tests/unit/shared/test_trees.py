"""The NumPy tree evaluator against xgboost: probabilities and approximate (Saabas) contributions
agree to 1e-6 on the packaged models and on freshly trained boosters of every shape serving meets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from dozor.domain.errors import ModelMismatchError
from dozor.domain.fraud.model import PACKAGED_MODEL_DIR, FraudModel
from dozor.domain.parcels.model import PACKAGED_PARCEL_MODEL_DIR, ParcelLossModel
from dozor.domain.trees import TREES_FILE, TreeEnsemble, TreeFormatError, load_artifact_trees
from dozor_training.fitting import (
    PARITY_TOLERANCE,
    EvaluatorMismatchError,
    evaluator_error,
    export_booster,
    parity_rows,
)

TOLERANCE = 1e-6


def rows_near_splits(trees: TreeEnsemble, count: int, seed: int, missing: float = 0.2) -> np.ndarray:
    """Rows whose values sit on, just beside and around the trees' thresholds, a share of them NaN:
    every branch is taken, and values equal to a threshold check `x < threshold` goes left."""
    rng = np.random.default_rng(seed)
    inner = trees.left != np.arange(len(trees.left))
    x = np.empty((count, trees.num_features), dtype=np.float32)
    for f in range(trees.num_features):
        thresholds = trees.threshold[inner & (trees.feature == f)]
        if thresholds.size == 0:
            x[:, f] = rng.normal(size=count)
            continue
        picked = rng.choice(thresholds, count)
        nudged = np.nextafter(picked, np.where(rng.random(count) < 0.5, -np.inf, np.inf).astype(np.float32))
        spread = picked * rng.uniform(0.5, 1.5, count) + rng.normal(0, 0.01, count)
        kind = rng.random(count)
        x[:, f] = np.where(kind < 0.25, picked, np.where(kind < 0.5, nudged, spread))
    x[rng.random(x.shape) < missing] = np.nan
    return x


def assert_parity(booster: xgb.Booster, trees: TreeEnsemble, rows: np.ndarray) -> dict[str, float]:
    errors = evaluator_error(booster, trees, rows)
    assert errors["probability"] <= TOLERANCE, errors
    assert errors["contributions"] <= TOLERANCE, errors
    return errors


def packaged_booster(directory: Path) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(directory / "model.ubj")
    return booster


@pytest.mark.parametrize(
    "directory", [PACKAGED_MODEL_DIR, PACKAGED_PARCEL_MODEL_DIR], ids=["fraud", "parcel"]
)
def test_the_packaged_arrays_reproduce_their_booster(directory: Path) -> None:
    booster = packaged_booster(directory)
    shipped = TreeEnsemble.load(directory / TREES_FILE)
    assert shipped.num_trees == booster.num_boosted_rounds()
    assert shipped.num_features == booster.num_features()
    assert_parity(booster, shipped, rows_near_splits(shipped, 3000, seed=1))
    # and the packaged file is what the export builds from model.ubj today
    rebuilt = TreeEnsemble.from_booster(booster)
    for name in ("feature", "threshold", "left", "right", "default_left", "value", "mean", "roots"):
        np.testing.assert_array_equal(getattr(shipped, name), getattr(rebuilt, name), err_msg=name)


def test_the_serving_models_score_as_their_boosters() -> None:
    for model, directory in (
        (FraudModel.load(), PACKAGED_MODEL_DIR),
        (ParcelLossModel.load(), PACKAGED_PARCEL_MODEL_DIR),
    ):
        booster = packaged_booster(directory)
        booster.feature_names = None
        rows = rows_near_splits(model.trees, 4000, seed=2)
        expected = np.asarray(booster.inplace_predict(rows), dtype=np.float64)
        raw = model.trees.predict(rows)
        np.testing.assert_allclose(raw, expected, atol=TOLERANCE, rtol=0)
        # The same float32 value but for a rare last-bit difference of the sigmoid's exp...
        same = raw == expected
        assert same.mean() > 0.995, same.mean()
        # ...so the calibrated scores are the same wherever the raw ones are.
        calibration = model.metadata["calibration"]
        old = np.interp(expected, calibration["x"], calibration["y"]).clip(0, 1)
        new = model.scores(rows) if isinstance(model, FraudModel) else model.risk(rows)
        np.testing.assert_array_equal(new[same], old[same])

    fraud = FraudModel.load()
    rows = rows_near_splits(fraud.trees, 50, seed=3)
    scores, contributions = fraud.scores_and_contributions(rows)
    np.testing.assert_array_equal(scores, fraud.scores(rows))
    np.testing.assert_array_equal(contributions, fraud.contributions(rows))
    assert contributions.shape == (50, fraud.trees.num_features)


def train(
    params: dict[str, object], rounds: int, seed: int = 0, features: int = 6
) -> tuple[xgb.Booster, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, features)).astype(np.float32)
    x[:, 0] = np.round(x[:, 0] * 2)  # few distinct values: splits land on values rows really have
    x[rng.random(x.shape) < 0.25] = np.nan  # missing values in training: learned default branches
    signal = np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 1]) * np.nan_to_num(x[:, 2]) - np.isnan(x[:, 3])
    y = (signal + rng.normal(0, 0.7, 600) > 0.3).astype(np.float32)
    booster = xgb.train(
        {"nthread": 1, "seed": seed, **params}, xgb.DMatrix(x, label=y, missing=np.nan), rounds
    )
    return booster, x


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"objective": "binary:logistic", "max_depth": 3}, id="default-base-score"),
        pytest.param({"objective": "binary:logistic", "max_depth": 3, "base_score": 0.5}, id="base-0.5"),
        pytest.param({"objective": "binary:logistic", "max_depth": 3, "base_score": 0.02}, id="base-0.02"),
        pytest.param({"objective": "binary:logistic", "max_depth": 3, "base_score": 0.93}, id="base-0.93"),
        pytest.param({"objective": "binary:logistic", "max_depth": 1}, id="stumps"),
        pytest.param({"objective": "binary:logistic", "max_depth": 12, "min_child_weight": 0}, id="deep"),
        pytest.param(
            {"objective": "binary:logistic", "grow_policy": "lossguide", "max_depth": 0, "max_leaves": 40},
            id="lossguide-unbalanced",
        ),
        pytest.param({"objective": "binary:logistic", "tree_method": "exact", "max_depth": 4}, id="exact"),
        pytest.param({"objective": "reg:squarederror", "max_depth": 4}, id="regression"),
    ],
)
def test_fresh_boosters_with_missing_values_agree_with_xgboost(params: dict[str, object]) -> None:
    booster, x = train(params, rounds=25)
    trees = TreeEnsemble.from_booster(booster)
    rows = np.vstack([x, rows_near_splits(trees, 800, seed=4), np.full((1, x.shape[1]), np.nan, np.float32)])
    assert_parity(booster, trees, rows)


def test_a_single_row_and_a_batch_give_the_same_numbers() -> None:
    booster, x = train({"objective": "binary:logistic", "max_depth": 5}, rounds=30)
    trees = TreeEnsemble.from_booster(booster)
    # A single row takes its own path through the walk (fewer, smaller arrays): rows on and next
    # to the thresholds, with missing values, must come out the same as in a batch.
    rows = np.vstack([x[:10], rows_near_splits(trees, 40, seed=5)])
    batch = trees.evaluate(rows)
    for i in range(len(rows)):
        one = trees.evaluate(rows[i])
        np.testing.assert_array_equal(one.margin, batch.margin[i : i + 1])
        np.testing.assert_array_equal(one.contributions, batch.contributions[i : i + 1])


def test_a_value_on_a_threshold_goes_right_and_nan_follows_the_default() -> None:
    booster, _ = train({"objective": "binary:logistic", "max_depth": 1}, rounds=1)
    trees = TreeEnsemble.from_booster(booster)
    root = int(trees.roots[0])
    feature, threshold = int(trees.feature[root]), trees.threshold[root]
    row = np.zeros((3, trees.num_features), dtype=np.float32)
    row[0, feature] = threshold
    row[1, feature] = np.nextafter(threshold, np.float32(-np.inf))
    row[2, feature] = np.nan
    leaves = trees.leaves(row)[:, 0]
    assert leaves[0] == trees.right[root] and leaves[1] == trees.left[root]
    assert leaves[2] == (trees.left[root] if trees.default_left[root] else trees.right[root])
    assert [int(trees.leaves(one)[0, 0]) for one in row] == leaves.tolist()  # one row at a time


def test_the_arrays_survive_a_save_and_load(tmp_path: Path) -> None:
    booster, x = train({"objective": "binary:logistic", "max_depth": 4, "base_score": 0.3}, rounds=10)
    trees = TreeEnsemble.from_booster(booster)
    trees.save(tmp_path / TREES_FILE)
    loaded = TreeEnsemble.load(tmp_path / TREES_FILE)
    assert (loaded.base_margin, loaded.depth, loaded.link) == (trees.base_margin, trees.depth, trees.link)
    np.testing.assert_array_equal(loaded.evaluate(x).contributions, trees.evaluate(x).contributions)


def test_a_booster_the_evaluator_cannot_represent_is_refused() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 3)), rng.integers(0, 3, 100)
    multi = xgb.train({"objective": "multi:softprob", "num_class": 3}, xgb.DMatrix(x, label=y), 2)
    with pytest.raises(TreeFormatError):
        TreeEnsemble.from_booster(multi)


def test_export_writes_the_arrays_and_refuses_an_evaluator_that_disagrees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    booster, x = train({"objective": "binary:logistic", "max_depth": 3}, rounds=10)
    errors = export_booster(booster, tmp_path / "good", parity_rows(x))
    assert {p.name for p in (tmp_path / "good").iterdir()} == {"model.ubj", TREES_FILE}
    assert max(errors.values()) <= PARITY_TOLERANCE

    other, _ = train({"objective": "binary:logistic", "max_depth": 3}, rounds=10, seed=9)
    wrong = TreeEnsemble.from_booster(other)
    monkeypatch.setattr(TreeEnsemble, "from_booster", classmethod(lambda cls, b: wrong))
    with pytest.raises(EvaluatorMismatchError):
        export_booster(booster, tmp_path / "bad", parity_rows(x))
    assert not (tmp_path / "bad").exists()


def test_an_artifact_without_its_arrays_or_with_the_wrong_width_is_refused(tmp_path: Path) -> None:
    metadata = json.loads((PACKAGED_MODEL_DIR / "metadata.json").read_text())
    with pytest.raises(ModelMismatchError, match=TREES_FILE):
        load_artifact_trees(tmp_path, metadata)
    booster, _ = train({"objective": "binary:logistic", "max_depth": 2}, rounds=2)
    TreeEnsemble.from_booster(booster).save(tmp_path / TREES_FILE)
    with pytest.raises(ModelMismatchError, match="6 features"):
        load_artifact_trees(tmp_path, metadata)
    (tmp_path / TREES_FILE).write_bytes(b"not an npz")
    with pytest.raises(ModelMismatchError, match="unreadable"):
        load_artifact_trees(tmp_path, metadata)


def test_the_memory_bounded_paths_give_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    import dozor.domain.trees as trees_module  # noqa: PLC0415 - its bounds are patched here

    booster, x = train({"objective": "binary:logistic", "max_depth": 6}, rounds=20)
    fast = TreeEnsemble.from_booster(booster)
    monkeypatch.setattr(trees_module, "_TABLE_CELLS", 0)  # no per-leaf table: contributions per call
    monkeypatch.setattr(trees_module, "_DECISION_CELLS", 1)  # one row at a time
    bounded = TreeEnsemble.from_booster(booster)
    a, b = fast.evaluate(x[:50]), bounded.evaluate(x[:50])
    np.testing.assert_array_equal(a.margin, b.margin)
    np.testing.assert_array_equal(a.contributions, b.contributions)
    assert_parity(booster, bounded, x)

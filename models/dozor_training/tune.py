"""Model selection: XGBoost hyperparameters chosen on rolling-origin folds, within a time budget.

The training rows, oldest first, are cut into ``folds + 1`` consecutive blocks of equal size.
Fold i fits on blocks 0..i and is validated on block i+1, the next stretch of time: never a
shuffled split, since a model always meets orders newer than the ones it learned from. Each
candidate is boosted on every fold in lockstep; after each round the validation average precision
is averaged over the folds (the validation curve), boosting stops when that mean has not improved
for a while, and the candidate's score and number of rounds are the curve's best. Candidates are
the current parameters first, then a seeded random search, until the next candidate would overrun
the budget; boosting itself stops at the budget's end, and a candidate cut short there is left
out (the defaults, always tried first, are kept as far as they got). The best score wins (ties:
the earlier, so the defaults).

Fit rows carry the labels known at the training cut-off, as the final fit's do: the folds compare
hyperparameters on the model the final fit will be, not on one with fewer labels. Features are
point-in-time already, and validation blocks are later than their fit rows, so nothing a fold
validates on was seen by its fit. Calibration and thresholds are not touched here: the final fit,
its isotonic calibration and its thresholds all use the calibration split afterwards, as without
tuning.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb

DEFAULT_BUDGET_SECONDS = 300.0

# What is searched. `n_estimators` is not a dimension: early stopping picks it per fold.
SEARCH_SPACE: dict[str, tuple[float, ...]] = {
    "max_depth": (3, 4, 5, 6, 8),
    "eta": (0.03, 0.05, 0.08, 0.12, 0.2),
    "min_child_weight": (1, 2, 5, 10, 20),
    "subsample": (0.6, 0.75, 0.9, 1.0),
    "colsample_bytree": (0.5, 0.65, 0.8, 1.0),
}
_INTEGER = frozenset({"max_depth", "min_child_weight"})


@dataclass(frozen=True)
class TuneConfig:
    budget_seconds: float = DEFAULT_BUDGET_SECONDS
    folds: int = 3
    seed: int = 0
    max_candidates: int = 60
    early_stopping_rounds: int = 30
    max_rounds: int = 800
    # Threads per fold fit. The search is many small fits, where two OpenMP threads meet at a
    # barrier several times a round; on a busy machine they spin there: 12 fits of 4,500 rows took
    # 107 s with two threads and 6.3 s with one, on 2 cores shared with other work.
    nthread: int = 1


@dataclass(frozen=True)
class Trial:
    """One candidate's result on the folds."""

    params: dict[str, float]  # the searched dimensions only
    score: float  # the best mean validation AP over the folds
    fold_scores: list[float]  # each fold's validation AP at that round
    rounds: int  # the round it was reached at (1-based: trees kept)
    curve: list[float]  # mean validation AP over the folds after each round
    seconds: float
    complete: bool = True  # false when the budget ran out while it was boosting

    def as_dict(self, curve: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "params": self.params,
            "validation_ap": round(self.score, 5),
            "fold_ap": [round(s, 5) for s in self.fold_scores],
            "rounds": self.rounds,
            "seconds": round(self.seconds, 2),
        }
        if curve:
            out["curve"] = [round(v, 5) for v in self.curve]
        return out


@dataclass(frozen=True)
class Fold:
    fit_rows: int
    validation_rows: int
    validation_positives: int
    validation_start: float  # epoch seconds of the block's first order


@dataclass(frozen=True)
class TuneResult:
    chosen: Trial
    default: Trial
    trials: list[Trial]
    folds: list[Fold]
    seconds: float
    budget_seconds: float
    stopped_by: str  # "budget" or "candidates"
    base_params: Mapping[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        """The parameters the final fit uses: the base ones with the chosen dimensions."""
        return dict(self.base_params) | self.chosen.params

    def max_rounds(self, floor: int) -> int:
        """A round limit for the final fit: room past the folds' rounds (it sees more rows)."""
        return max(floor, 2 * self.chosen.rounds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen.as_dict(curve=True),
            "default": self.default.as_dict(curve=True),
            "candidates": len(self.trials),
            "trials": [t.as_dict() for t in self.trials],
            "folds": [vars(f) for f in self.folds],
            "seconds": round(self.seconds, 1),
            "budget_seconds": self.budget_seconds,
            "stopped_by": self.stopped_by,
            "method": "rolling-origin folds (expanding window, time order), mean validation AP",
        }


class TuningError(ValueError):
    """The training period cannot be cut into folds that each validate on some fraud."""


def rolling_blocks(n: int, folds: int) -> list[tuple[int, int, int]]:
    """(fit end, validation start, validation end) row positions of each fold over ``n`` time-sorted rows."""
    edges = np.linspace(0, n, folds + 2).round().astype(int).tolist()
    return [(edges[i + 1], edges[i + 1], edges[i + 2]) for i in range(folds)]


def candidates(base: Mapping[str, Any], seed: int) -> itertools.chain[dict[str, float]]:
    """The current parameters, then distinct random points of SEARCH_SPACE (seeded)."""
    first = {name: base[name] for name in SEARCH_SPACE}
    rng = np.random.default_rng(seed)
    seen = {tuple(first.values())}

    def sampled() -> Any:
        for _ in range(10_000):
            point = {name: values[int(rng.integers(len(values)))] for name, values in SEARCH_SPACE.items()}
            point = {k: int(v) if k in _INTEGER else float(v) for k, v in point.items()}
            key = tuple(point.values())
            if key not in seen:
                seen.add(key)
                yield point

    return itertools.chain([first], sampled())


def tune(
    base_params: Mapping[str, Any],
    feature_names: Sequence[str],
    x: np.ndarray,
    y: np.ndarray,
    times: np.ndarray,
    config: TuneConfig | None = None,
) -> TuneResult:
    """Choose hyperparameters for the training rows ``x``, ``y`` (``times``: epoch seconds)."""
    config = config or TuneConfig()
    started = time.perf_counter()
    order = np.argsort(times, kind="stable")
    x, y, times = x[order], y[order], times[order]
    folds, matrices = _fold_matrices(x, y, times, feature_names, config.folds)
    trials: list[Trial] = []
    stopped_by = "candidates"
    deadline = started + config.budget_seconds
    for point in itertools.islice(candidates(base_params, config.seed), config.max_candidates):
        typical = float(np.mean([t.seconds for t in trials])) if trials else 0.0
        if trials and time.perf_counter() + typical > deadline:
            stopped_by = "budget"
            break
        trial = _trial(dict(base_params) | point, point, matrices, config, deadline)
        if not trials or trial.complete:
            trials.append(trial)
        if not trial.complete:
            stopped_by = "budget"
            break
    best = max(trials, key=lambda t: t.score)  # max keeps the first of equal scores: the default
    return TuneResult(
        chosen=best,
        default=trials[0],
        trials=trials,
        folds=folds,
        seconds=time.perf_counter() - started,
        budget_seconds=config.budget_seconds,
        stopped_by=stopped_by,
        base_params=dict(base_params),
    )


def _fold_matrices(
    x: np.ndarray, y: np.ndarray, times: np.ndarray, names: Sequence[str], n_folds: int
) -> tuple[list[Fold], list[tuple[xgb.DMatrix, xgb.DMatrix]]]:
    """Each usable fold's (fit, validation) matrices, built once for every candidate."""
    folds: list[Fold] = []
    matrices: list[tuple[xgb.DMatrix, xgb.DMatrix]] = []
    for fit_end, start, end in rolling_blocks(len(y), n_folds):
        positives_fit, positives_val = int(y[:fit_end].sum()), int(y[start:end].sum())
        if positives_fit == 0 or positives_val == 0 or positives_val == end - start:
            continue  # no fraud to learn from or to rank: this fold says nothing
        fit = xgb.QuantileDMatrix(x[:fit_end], label=y[:fit_end], missing=np.nan, feature_names=list(names))
        valid = xgb.QuantileDMatrix(
            x[start:end], label=y[start:end], missing=np.nan, feature_names=list(names), ref=fit
        )
        matrices.append((fit, valid))
        folds.append(Fold(fit_end, end - start, positives_val, float(times[start])))
    if not matrices:
        raise TuningError("no fold of the training period has fraud both to fit on and to validate on")
    return folds, matrices


def _trial(
    params: dict[str, Any],
    point: dict[str, float],
    matrices: Sequence[tuple[xgb.DMatrix, xgb.DMatrix]],
    config: TuneConfig,
    deadline: float,
) -> Trial:
    """Boost every fold in lockstep, one round at a time, and stop when their mean validation AP
    has not improved for ``early_stopping_rounds`` (as ``xgb.cv`` does, on time-ordered folds)."""
    started = time.perf_counter()
    params = params | {"eval_metric": "aucpr", "nthread": config.nthread}
    boosters = [xgb.Booster(params, [fit, valid]) for fit, valid in matrices]
    per_fold: list[list[float]] = [[] for _ in matrices]
    curve: list[float] = []
    best = 0
    complete = True
    for i in range(config.max_rounds):
        for booster, (fit, valid), scores in zip(boosters, matrices, per_fold, strict=True):
            booster.update(fit, i)
            scores.append(_aucpr(booster.eval_set([(valid, "validation")], i)))
        curve.append(float(np.mean([scores[-1] for scores in per_fold])))
        if curve[i] > curve[best]:
            best = i
        if i - best >= config.early_stopping_rounds:
            break
        if time.perf_counter() > deadline:
            complete = False
            break
    return Trial(
        params=point,
        score=curve[best],
        fold_scores=[scores[best] for scores in per_fold],
        rounds=best + 1,
        curve=curve,
        seconds=time.perf_counter() - started,
        complete=complete,
    )


def _aucpr(evaluation: str) -> float:
    """The metric of ``Booster.eval_set``'s text: ``[12]\tvalidation-aucpr:0.61``."""
    return float(evaluation.rsplit(":", 1)[1])

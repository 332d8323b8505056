"""REVIEW / DECLINE thresholds chosen on the calibration split, the same way for every scorer.

Every distinct score is a candidate, so the grid is exact for step-shaped scores (isotonic
calibration, rule severities). By cost, the expected cost splits into a term of the REVIEW
threshold and a term of the DECLINE threshold, so the best pair is found in linear time; by
budget, DECLINE is set first and REVIEW fills the reviewers' day below it (or both within it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from dozor_training.evaluation import (
    ChosenThresholds,
    CostModel,
    EvaluationSet,
    FloatArray,
    distinct_days,
    per_day,
)


@dataclass(frozen=True)
class _Tail:
    """Totals over the rows scoring at or above each candidate threshold (ascending candidates)."""

    candidates: FloatArray
    rows: FloatArray
    positives: FloatArray
    positive_amount: FloatArray
    negative_amount: FloatArray


def _never(scores: np.ndarray) -> float:
    """A threshold no score on this split reaches: how "never review" / "never decline" is written."""
    top = float(np.max(scores)) if len(scores) else 0.0
    return float(np.nextafter(top, math.inf))


def _tail(scores: np.ndarray, y: np.ndarray, amounts: np.ndarray) -> _Tail:
    # Every distinct score is a candidate (plus "never"), so the grid is exact for step-shaped
    # scores (isotonic calibration, rule severities) and as fine as the data for smooth ones.
    candidates = np.append(np.unique(scores), _never(scores))
    order = np.argsort(scores, kind="stable")
    s, yy, aa = scores[order], y[order].astype(np.float64), amounts[order].astype(np.float64)
    # Index of the first row at or above each candidate; suffix sums from there.
    start = np.searchsorted(s, candidates, side="left")

    def suffix(values: FloatArray) -> FloatArray:
        totals = np.concatenate([np.cumsum(values[::-1])[::-1], [0.0]])
        return np.asarray(totals[start], dtype=np.float64)

    return _Tail(
        candidates=candidates.astype(np.float64),
        rows=suffix(np.ones_like(s, dtype=np.float64)),
        positives=suffix(yy),
        positive_amount=suffix(yy * aa),
        negative_amount=suffix((1 - yy) * aa),
    )


def _cost_terms(tail: _Tail, cost: CostModel) -> tuple[FloatArray, FloatArray, float]:
    """Split the expected cost of (review r, decline d) into A(r) + B(d) + constant.

    With R, D the rows at or above r and d (D inside R): cost = loss on fraud approved
    + reviews + loss on fraud a review misses + legitimate orders declined, and each term depends
    on r or on d alone. That makes the best d for every r a suffix minimum, so the whole grid is
    searched in linear time.
    """
    fraud_total = float(tail.positive_amount[0])
    missed = 1.0 - cost.review_catch_rate
    by_review = (
        -cost.fraud_loss_share * tail.positive_amount
        + cost.review_cost_rub * tail.rows
        + missed * cost.fraud_loss_share * tail.positive_amount
    )
    by_decline = (
        -cost.review_cost_rub * tail.rows
        - missed * cost.fraud_loss_share * tail.positive_amount
        + cost.false_decline_share * tail.negative_amount
    )
    return by_review, by_decline, cost.fraud_loss_share * fraud_total


def _best_decline_from(by_decline: FloatArray) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """For each candidate index i, min over j >= i of by_decline[j] and the j that reaches it.

    Ties go to the highest j: of equally cheap decline thresholds the one declining fewest.
    """
    n = len(by_decline)
    best = np.empty(n)
    where = np.empty(n, dtype=np.intp)
    best[-1], where[-1] = by_decline[-1], n - 1
    for i in range(n - 2, -1, -1):
        if by_decline[i] < best[i + 1]:
            best[i], where[i] = by_decline[i], i
        else:
            best[i], where[i] = best[i + 1], where[i + 1]
    return best, where


def _lowest_within(rows_at_or_above: FloatArray, allowed: float, highest: int) -> int:
    """Index of the lowest candidate (up to ``highest``) whose row count fits ``allowed``.

    With ties (rule severities, isotonic steps) a threshold inside a tied block would send the
    whole block to review, so the budget is never exceeded, only under-filled.
    """
    fits = rows_at_or_above[: highest + 1] <= allowed
    return int(np.argmax(fits)) if fits.any() else highest


def _decline(tail: _Tail, cost: CostModel | None, decline_precision: float | None, lowest: int) -> int:
    """DECLINE at or above candidate ``lowest``: where precision reaches the target, else cheapest."""
    if decline_precision is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = tail.positives / tail.rows
        reaches = (precision >= decline_precision) & (np.arange(len(precision)) >= lowest)
        return int(np.argmax(reaches)) if reaches.any() else len(tail.candidates) - 1
    assert cost is not None
    _, by_decline, _ = _cost_terms(tail, cost)
    return int(_best_decline_from(by_decline)[1][lowest])


def choose_thresholds(
    scores: np.ndarray,
    y: np.ndarray,
    amounts_rub: np.ndarray | None,
    days: np.ndarray,
    *,
    cost: CostModel | None = None,
    review_budget_per_day: float | None = None,
    decline_precision: float | None = None,
    budget_includes_declined: bool = False,
    period_days: float | None = None,
) -> ChosenThresholds:
    """Pick REVIEW / DECLINE thresholds on the calibration split, by cost or by review budget.

    - ``review_budget_per_day=None``: method "cost" — the pair (review <= decline) that minimises
      the expected cost of ``cost`` over every distinct score.
    - ``review_budget_per_day=k``: method "budget" — DECLINE at the lowest score whose precision
      reaches ``decline_precision`` when that is given, else the cheapest under ``cost``; REVIEW
      at the lowest score such that on average at most k rows a day fall between it and DECLINE
      (the reviewers' day). ``budget_includes_declined=True`` counts declined rows in the k and
      picks DECLINE above REVIEW instead.

    A threshold no calibration score reaches means "never" (no reviews, no declines).
    ``period_days`` is the split's length in days (default: the distinct ``days``).
    """
    scores = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y).astype(np.int8)
    n_days = period_days or distinct_days(days)
    amounts = np.ones_like(scores) if amounts_rub is None else np.asarray(amounts_rub, dtype=np.float64)
    by_cost = review_budget_per_day is None or decline_precision is None
    if by_cost and cost is None:
        raise ValueError("give a cost model, or a review budget with a decline precision target")
    if by_cost and amounts_rub is None:
        raise ValueError("the cost model needs amounts_rub")
    tail = _tail(scores, y, amounts)

    method: Literal["cost", "budget"]
    if review_budget_per_day is None:
        assert cost is not None
        method, (r, d, params) = "cost", _by_cost(tail, cost, n_days)
    else:
        method = "budget"
        r, d, params = _by_budget(
            tail, cost, review_budget_per_day * n_days, decline_precision, budget_includes_declined
        )
        params = {"review_budget_per_day": review_budget_per_day} | params

    at_review, at_decline = tail.rows[r], tail.rows[d]
    params |= {
        "calibration_rows": len(scores),
        "calibration_days": round(n_days, 3),
        "calibration_reviewed_per_day": per_day(at_review - at_decline, n_days),
        "calibration_declined_per_day": per_day(at_decline, n_days),
    }
    return ChosenThresholds(
        review=float(tail.candidates[r]), decline=float(tail.candidates[d]), method=method, params=params
    )


def _by_cost(tail: _Tail, cost: CostModel, n_days: float) -> tuple[int, int, dict[str, Any]]:
    """The (review, decline) candidate indices of least expected cost, and what that costs a day."""
    by_review, by_decline, constant = _cost_terms(tail, cost)
    best_decline, where = _best_decline_from(by_decline)
    total = by_review + best_decline + constant
    # Ties go to the highest review threshold: of equally cheap policies the one reviewing least.
    r = int(len(total) - 1 - np.argmin(total[::-1]))
    params = {
        "cost_model": asdict(cost),
        "calibration_cost_per_day_rub": round(float(total[r]) / n_days, 2),
    }
    return r, int(where[r]), params


def _by_budget(
    tail: _Tail,
    cost: CostModel | None,
    allowed: float,
    decline_precision: float | None,
    includes_declined: bool,
) -> tuple[int, int, dict[str, Any]]:
    """The (review, decline) candidate indices that keep `allowed` rows in the reviewers' period."""
    if allowed <= 0:
        raise ValueError("review_budget_per_day must be positive")
    last = len(tail.candidates) - 1
    if includes_declined:
        # The k a day are everything at or above REVIEW; DECLINE is then sought above it.
        r = _lowest_within(tail.rows, allowed, last)
        d = _decline(tail, cost, decline_precision, lowest=r)
    else:
        # The k a day are what reviewers see: DECLINE first, REVIEW fills the budget below it.
        d = _decline(tail, cost, decline_precision, lowest=0)
        r = _lowest_within(tail.rows - tail.rows[d], allowed, d)
    params: dict[str, Any] = {"budget_includes_declined": includes_declined}
    if decline_precision is not None:
        params["decline_precision"] = decline_precision
    else:
        assert cost is not None
        params["cost_model"] = asdict(cost)
    return r, d, params


def choose_thresholds_for(
    data: EvaluationSet,
    *,
    cost: CostModel | None = None,
    review_budget_per_day: float | None = None,
    decline_precision: float | None = None,
    budget_includes_declined: bool = False,
) -> dict[str, ChosenThresholds]:
    """``choose_thresholds`` for every scorer in a (calibration) set, the same way for each."""
    return {
        name: choose_thresholds(
            s,
            data.labels,
            data.amounts_rub,
            data.days,
            cost=cost,
            review_budget_per_day=review_budget_per_day,
            decline_precision=decline_precision,
            budget_includes_declined=budget_includes_declined,
            period_days=data.period_days,
        )
        for name, s in data.scores.items()
    }

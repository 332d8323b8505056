"""How good a risk model is, in the terms the business decides by: caught per reviewer-day, money.

Training-side and model-agnostic: it sees a score per row (an order, a parcel), the label, the
day of the row and optionally its amount and its entity (buyer, seller, lane). The same code
judges the fraud model and the parcel-loss model, and the baselines beside them: a rules-only
score (sum of rule severities) and a logistic regression fitted on the same training matrix.

Every scorer is judged on the same rows. Ranking metrics (ROC AUC, average precision, recall at a
fixed false-positive rate, precision of the top k a day) need no thresholds; decision metrics
(orders reviewed and declined a day, expected cost) use each scorer's own thresholds, chosen on
the calibration split by ``thresholds.choose_thresholds`` with the same method, so no scorer is judged on
a threshold tuned for another's scale.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # scikit-learn requires it

FloatArray = npt.NDArray[np.float64]
Scorer = Callable[[np.ndarray], FloatArray]

MODEL = "model"
RULES_ONLY = "rules_only"
LOGISTIC = "logistic"


@dataclass(frozen=True)
class CostModel:
    """What each outcome costs: shares of the order amount, and roubles per review."""

    fraud_loss_share: float = 1.0  # of the amount, lost when a fraud order is approved
    review_cost_rub: float = 150.0  # one analyst look at one order
    false_decline_share: float = 0.15  # of the amount, lost when a legitimate order is declined
    review_catch_rate: float = 0.9  # chance a reviewer stops a fraud order they look at

    def __post_init__(self) -> None:
        if not 0.0 <= self.review_catch_rate <= 1.0:
            raise ValueError("review_catch_rate must be in [0, 1]")
        if min(self.fraud_loss_share, self.review_cost_rub, self.false_decline_share) < 0:
            raise ValueError("costs must not be negative")


class HasThresholds(Protocol):
    """Anything with a REVIEW and a DECLINE threshold (``ChosenThresholds``, the domain's ``Thresholds``)."""

    @property
    def review(self) -> float: ...

    @property
    def decline(self) -> float: ...


@dataclass(frozen=True)
class ChosenThresholds:
    """REVIEW / DECLINE thresholds and how they were chosen, for metadata.json and the model card."""

    review: float
    decline: float
    method: Literal["cost", "budget"]
    params: dict[str, Any] = field(default_factory=dict)

    def pair(self) -> dict[str, float]:
        """The ``{"review", "decline"}`` mapping serving loads as ``Thresholds``."""
        return {"review": self.review, "decline": self.decline}

    def selection(self) -> dict[str, Any]:
        """How the pair was chosen: method, its parameters, what it did on the calibration split."""
        return {"method": self.method, "params": self.params}


@dataclass(frozen=True)
class EvaluationSet:
    """One split, every scorer's scores on it, and what the business metrics need per row."""

    y: np.ndarray  # 1 where the row is positive (fraud, lost)
    days: np.ndarray  # the day of each row: a date, datetime64 or an integer day index
    scores: Mapping[str, np.ndarray]  # "model" first, then baselines ("rules_only", "logistic")
    amounts_rub: np.ndarray | None = None  # needed for expected cost
    entity_ids: np.ndarray | None = None  # buyer (seller, lane) per row, for entity precision@k
    # How many days the split covers, for "a day" rates; default: the distinct days present,
    # which over-counts when the split starts or ends mid-day.
    period_days: float | None = None

    def __post_init__(self) -> None:
        n = len(self.y)
        if MODEL not in self.scores:
            raise ValueError(f"scores must include {MODEL!r}")
        columns = {"days": self.days, "amounts_rub": self.amounts_rub, "entity_ids": self.entity_ids}
        columns |= {f"scores[{name!r}]": s for name, s in self.scores.items()}
        for name, column in columns.items():
            if column is not None and len(column) != n:
                raise ValueError(f"{name} has {len(column)} rows, y has {n}")
        if not np.isin(np.asarray(self.y), (0, 1)).all():
            raise ValueError("y must hold 0 and 1 only")

    @property
    def labels(self) -> npt.NDArray[np.int8]:
        return np.asarray(self.y).astype(np.int8)

    @property
    def day_count(self) -> float:
        return self.period_days or distinct_days(self.days)


def distinct_days(days: np.ndarray) -> float:
    return float(max(len(np.unique(np.asarray(days))), 1))


def day_index(epoch_seconds: np.ndarray, utc_offset_hours: int = 3) -> npt.NDArray[np.datetime64]:
    """Calendar day of each timestamp in the review team's time zone (Moscow by default)."""
    shifted = np.asarray(epoch_seconds, dtype=np.float64) + utc_offset_hours * 3600
    return shifted.astype("datetime64[s]").astype("datetime64[D]")


def per_day(count: float, days: float) -> float:
    """A count as a rate a day, to three decimals."""
    return round(float(count) / days, 3)


# --- the logistic-regression baseline ---------------------------------------------------------


def fit_logistic_baseline(
    x_train: np.ndarray, y_train: np.ndarray, seed: int = 0, max_iter: int = 300
) -> Scorer:
    """Fit the logistic-regression baseline on the training matrix; return its scorer.

    Missing values get the training median plus a missing indicator (missingness itself is a
    signal here: no device id, no card), features are standardised, classes balanced. Its scores
    rank but are not calibrated probabilities: balanced class weights inflate them.
    """
    pipeline = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(class_weight="balanced", max_iter=max_iter, random_state=seed)),
        ]
    )
    # One BLAS thread: lbfgs makes a few hundred small matrix products, and OpenBLAS threads spin
    # between them; on a busy machine a 22k-row fit took 21.8 s with two threads, 3.7 s with one.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        # max_iter is bounded on purpose (a baseline, not a contender); a few more iterations
        # would move the ranking by nothing a report shows. Empty columns are dropped by design.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*Skipping features without any observed values.*")
        pipeline.fit(_finite(x_train), np.asarray(y_train).astype(np.int8))

    def score(x: np.ndarray) -> FloatArray:
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            warnings.filterwarnings("ignore", message=".*Skipping features without any observed values.*")
            return np.asarray(pipeline.predict_proba(_finite(x))[:, 1], dtype=np.float64)

    return score


def _finite(x: np.ndarray) -> FloatArray:
    matrix = np.array(x, dtype=np.float64)
    matrix[~np.isfinite(matrix)] = np.nan
    return matrix


# --- metrics ----------------------------------------------------------------------------------


def _number(value: float | np.floating[Any]) -> float | None:
    """A JSON-safe float: NaN (undefined, e.g. a day without rows) becomes null."""
    v = float(value)
    return None if math.isnan(v) or math.isinf(v) else round(v, 6)


def precision_at_k(scores: np.ndarray, y: np.ndarray, k: int) -> tuple[float, float]:
    """Expected (positives, rows) among the top k by score, ties broken at random.

    A tie at the cut would otherwise be broken by row order, which flatters or punishes a scorer
    with many equal scores (rules-only) by accident; the expectation is what a reviewer gets.
    """
    n = len(scores)
    if n == 0 or k <= 0:
        return 0.0, 0.0
    take = min(k, n)
    ordered = np.sort(scores)[::-1]
    cut = ordered[take - 1]
    above = scores > cut
    tied = scores == cut
    slots = take - int(above.sum())
    positives = float(y[above].sum()) + slots * float(y[tied].sum()) / float(tied.sum())
    return positives, float(take)


def _day_groups(days: np.ndarray) -> tuple[list[str], list[npt.NDArray[np.intp]]]:
    values = np.asarray(days)
    unique, inverse = np.unique(values, return_inverse=True)
    labels = [str(u.astype("datetime64[D]")) if isinstance(u, np.datetime64) else str(u) for u in unique]
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(unique) + 1))
    return labels, [order[bounds[i] : bounds[i + 1]] for i in range(len(unique))]


def entity_precision_at_k(
    scores: np.ndarray, y: np.ndarray, entities: np.ndarray, groups: list[npt.NDArray[np.intp]], k: int
) -> list[float]:
    """Per day: rank entities by their highest score that day, skip those already flagged on an
    earlier day, take the top k; the share of them with a positive row that day (NaN: none left).

    A fraud ring flagged on Monday and reviewed is not news on Tuesday; counting it again would
    credit a scorer for finding the same buyer every day. Ties go to the lower entity id.
    """
    flagged: set[Any] = set()
    daily: list[float] = []
    for rows in groups:
        ids, inverse = np.unique(entities[rows], return_inverse=True)
        best = np.full(len(ids), -np.inf)
        np.maximum.at(best, inverse, scores[rows])
        positive = np.zeros(len(ids), dtype=bool)
        np.logical_or.at(positive, inverse, y[rows].astype(bool))
        fresh = np.array([e not in flagged for e in ids.tolist()], dtype=bool)
        candidates = np.flatnonzero(fresh)
        # np.unique sorted the ids, so a stable sort on -score breaks ties by id.
        top = candidates[np.argsort(-best[candidates], kind="stable")[:k]]
        flagged.update(ids[top].tolist())
        daily.append(float(positive[top].mean()) if len(top) else math.nan)
    return daily


def recall_at_fpr(scores: np.ndarray, y: np.ndarray, fpr: float = 0.01) -> float | None:
    """Share of positives caught at the highest threshold whose false-positive rate is within ``fpr``."""
    if y.min() == y.max():
        return None
    false_positive, true_positive, _ = roc_curve(y, scores)
    return _number(true_positive[false_positive <= fpr + 1e-12].max())


def calibration(scores: np.ndarray, y: np.ndarray, bins: int = 15) -> dict[str, Any] | None:
    """Expected calibration error over equal-width bins, Brier score and the reliability table.

    Only for probabilities: a score outside [0, 1] (a rule severity sum) has no calibration.
    """
    if len(scores) == 0 or scores.min() < 0.0 or scores.max() > 1.0:
        return None
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(scores, edges[1:-1], right=False), 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    score_sum = np.bincount(which, weights=scores, minlength=bins)
    positive_sum = np.bincount(which, weights=y.astype(np.float64), minlength=bins)
    filled = count > 0
    mean_score = np.divide(score_sum, count, out=np.full(bins, np.nan), where=filled)
    positive_rate = np.divide(positive_sum, count, out=np.full(bins, np.nan), where=filled)
    ece = float(np.sum(count[filled] * np.abs(mean_score[filled] - positive_rate[filled])) / len(scores))
    return {
        "ece": _number(ece),
        "brier": _number(np.mean((scores - y) ** 2)),
        "bins": bins,
        "reliability": [
            {
                "lower": round(float(edges[i]), 6),
                "upper": round(float(edges[i + 1]), 6),
                "rows": int(count[i]),
                "mean_score": _number(mean_score[i]),
                "positive_rate": _number(positive_rate[i]),
            }
            for i in range(bins)
        ],
    }


def _decisions(
    scores: np.ndarray,
    y: np.ndarray,
    amounts: np.ndarray | None,
    thresholds: HasThresholds,
    n_days: float,
    cost: CostModel | None,
) -> dict[str, Any]:
    declined = scores >= thresholds.decline
    reviewed = (scores >= thresholds.review) & ~declined
    positives = max(int(y.sum()), 1)
    decisions: dict[str, Any] = {
        "reviewed": int(reviewed.sum()),
        "declined": int(declined.sum()),
        "reviewed_per_day": per_day(reviewed.sum(), n_days),
        "declined_per_day": per_day(declined.sum(), n_days),
        "review_precision": _number(y[reviewed].mean()) if reviewed.any() else None,
        "decline_precision": _number(y[declined].mean()) if declined.any() else None,
        "recall": _number(y[reviewed | declined].sum() / positives),
    }
    if cost is None or amounts is None:
        return decisions
    positive_amount = amounts * y
    approved = ~reviewed & ~declined
    loss_approved = cost.fraud_loss_share * positive_amount[approved].sum()
    loss_review_missed = (
        (1 - cost.review_catch_rate) * cost.fraud_loss_share * positive_amount[reviewed].sum()
    )
    review_cost = cost.review_cost_rub * reviewed.sum()
    false_decline = cost.false_decline_share * (amounts * (1 - y))[declined].sum()
    total = loss_approved + loss_review_missed + review_cost + false_decline
    approve_all = cost.fraud_loss_share * positive_amount.sum()
    decisions["cost"] = {
        "total_rub": round(float(total), 2),
        "per_day_rub": round(float(total) / n_days, 2),
        "positive_loss_rub": round(float(loss_approved + loss_review_missed), 2),
        "review_cost_rub": round(float(review_cost), 2),
        "false_decline_rub": round(float(false_decline), 2),
        "saving_vs_approve_all_rub": round(float(approve_all - total), 2),
        "saving_share": _number((approve_all - total) / approve_all) if approve_all > 0 else None,
    }
    return decisions


def evaluate(
    data: EvaluationSet,
    *,
    thresholds: Mapping[str, HasThresholds],
    k_per_day: int,
    cost: CostModel | None = None,
    fpr: float = 0.01,
    calibration_bins: int = 15,
) -> dict[str, Any]:
    """Every metric of every scorer on one split, JSON-serialisable, with per-day series.

    ``thresholds`` maps scorer names to their REVIEW / DECLINE thresholds; a scorer without one
    gets ranking metrics only. ``cost`` (and ``data.amounts_rub``) add the expected cost.
    """
    y = data.labels
    labels, groups = _day_groups(data.days)
    n_days = data.day_count
    amounts = None if data.amounts_rub is None else np.asarray(data.amounts_rub, dtype=np.float64)
    daily: dict[str, Any] = {
        "day": labels,
        "rows": [len(g) for g in groups],
        "positives": [int(y[g].sum()) for g in groups],
        "precision_at_k": {},
        "recall_at_k": {},
    }
    if data.entity_ids is not None:
        daily["entity_precision_at_k"] = {}
    scorers: dict[str, Any] = {}
    for name, raw in data.scores.items():
        scores = np.asarray(raw, dtype=np.float64)
        metrics = _ranking(scores, y, groups, k_per_day, fpr, daily, name)
        metrics["calibration"] = calibration(scores, y, calibration_bins)
        if data.entity_ids is not None:
            entity_daily = entity_precision_at_k(scores, y, np.asarray(data.entity_ids), groups, k_per_day)
            daily["entity_precision_at_k"][name] = [_number(v) for v in entity_daily]
            valid = [v for v in entity_daily if not math.isnan(v)]
            metrics["entity_precision_at_k"] = {
                "k_per_day": k_per_day,
                "mean_daily": _number(np.mean(valid)) if valid else None,
            }
        chosen = thresholds.get(name)
        if chosen is not None:
            metrics["thresholds"] = {"review": chosen.review, "decline": chosen.decline}
            if isinstance(chosen, ChosenThresholds):
                metrics["thresholds"] |= chosen.selection()
            metrics["decisions"] = _decisions(scores, y, amounts, chosen, n_days, cost)
        scorers[name] = metrics

    result: dict[str, Any] = {
        "rows": len(y),
        "positives": int(y.sum()),
        "positive_rate": _number(y.mean()) if len(y) else None,
        "days": len(labels),
        "period_days": round(n_days, 3),
        "period": [labels[0], labels[-1]] if labels else None,
        "k_per_day": k_per_day,
        "cost_model": asdict(cost) if cost is not None else None,
        "scorers": scorers,
        "daily": daily,
    }
    if cost is not None and amounts is not None:
        approve_all = cost.fraud_loss_share * float((amounts * y).sum())
        result["approve_all_cost_rub"] = round(approve_all, 2)
        result["approve_all_cost_per_day_rub"] = round(approve_all / n_days, 2)
    return result


def _ranking(
    scores: FloatArray,
    y: np.ndarray,
    groups: list[npt.NDArray[np.intp]],
    k_per_day: int,
    fpr: float,
    daily: dict[str, Any],
    name: str,
) -> dict[str, Any]:
    """One scorer's threshold-free metrics; its daily precision and recall at k go into `daily`."""
    both_classes = 0 < int(y.sum()) < len(y)
    top = [precision_at_k(scores[g], y[g], k_per_day) for g in groups]
    caught = sum(p for p, _ in top)
    taken = sum(t for _, t in top)
    day_precision = [p / t if t else math.nan for p, t in top]
    day_recall = [p / y[g].sum() if y[g].sum() else math.nan for (p, _), g in zip(top, groups, strict=True)]
    daily["precision_at_k"][name] = [_number(v) for v in day_precision]
    daily["recall_at_k"][name] = [_number(v) for v in day_recall]
    return {
        "roc_auc": _number(roc_auc_score(y, scores)) if both_classes else None,
        "average_precision": _number(average_precision_score(y, scores)) if both_classes else None,
        "recall_at_fpr": {"fpr": fpr, "recall": recall_at_fpr(scores, y, fpr)},
        "precision_at_k": {
            "k_per_day": k_per_day,
            "mean_daily": _number(np.nanmean(day_precision)) if taken else None,
            "overall": _number(caught / taken) if taken else None,
            "recall": _number(caught / y.sum()) if y.sum() else None,
        },
    }

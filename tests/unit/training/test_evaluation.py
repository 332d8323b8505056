"""The evaluation module and report: metrics with known answers on hand-built and synthetic data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from dozor.domain.fraud.model import Thresholds
from dozor_training.evaluation import (
    ChosenThresholds,
    CostModel,
    EvaluationSet,
    day_index,
    evaluate,
    fit_logistic_baseline,
    precision_at_k,
)
from dozor_training.report import ModelCardInfo, Period, write_report
from dozor_training.report_text import FRAUD_TASK, PARCEL_LOSS_TASK
from dozor_training.thresholds import choose_thresholds, choose_thresholds_for

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def synthetic(days: int, per_day: int, seed: int, positive_rate: float = 0.03) -> EvaluationSet:
    """Orders with a model score that separates the classes, a noisier copy of it and rule severities."""
    rng = np.random.default_rng(seed)
    n = days * per_day
    y = (rng.random(n) < positive_rate).astype(np.int8)
    model = np.where(y == 1, rng.beta(5, 2, n), rng.beta(1, 12, n))
    logistic = np.clip(model + rng.normal(0, 0.15, n), 0, 1)
    rules = np.where(rng.random(n) < np.where(y == 1, 0.4, 0.03), rng.integers(1, 3, n), 0).astype(float)
    return EvaluationSet(
        y=y,
        days=np.repeat(np.arange(days), per_day),
        scores={"model": model, "rules_only": rules, "logistic": logistic},
        amounts_rub=rng.lognormal(8, 1, n),
        entity_ids=np.array([f"buyer-{i}" for i in rng.integers(0, n // 3, n)]),
    )


def cost_of(scores, y, amounts, review: float, decline: float, cost: CostModel) -> float:
    """The expected cost of one threshold pair, written out order by order."""
    total = 0.0
    for s, fraud, amount in zip(scores, y, amounts, strict=True):
        if s >= decline:
            total += 0.0 if fraud else cost.false_decline_share * amount
        elif s >= review:
            total += cost.review_cost_rub
            total += (1 - cost.review_catch_rate) * cost.fraud_loss_share * amount if fraud else 0.0
        else:
            total += cost.fraud_loss_share * amount if fraud else 0.0
    return total


# ---------------------------------------------------------------------------------------------
# precision@k per day
# ---------------------------------------------------------------------------------------------


def test_precision_at_k_per_day_on_a_hand_built_case():
    # Given two days and a review capacity of two orders a day
    data = EvaluationSet(
        y=np.array([1, 0, 1, 0, 0, 1, 1]),
        days=np.array(["2026-11-01"] * 4 + ["2026-11-02"] * 3),
        scores={"model": np.array([0.9, 0.8, 0.1, 0.05, 0.3, 0.7, 0.6])},
    )
    # When evaluated
    metrics = evaluate(data, thresholds={}, k_per_day=2)
    # Then day one's top two hold one fraud, day two's two
    assert metrics["daily"]["day"] == ["2026-11-01", "2026-11-02"]
    assert metrics["daily"]["precision_at_k"]["model"] == [0.5, 1.0]
    assert metrics["daily"]["recall_at_k"]["model"] == [0.5, 1.0]
    assert metrics["scorers"]["model"]["precision_at_k"]["mean_daily"] == 0.75
    assert metrics["scorers"]["model"]["precision_at_k"]["recall"] == 0.75  # 3 of 4 fraud orders


def test_precision_at_k_breaks_ties_at_the_cut_in_expectation():
    # Three orders tie at the cut for two places, one of them fraud: 1 + 1 * (1/3) expected
    positives, taken = precision_at_k(np.array([2.0, 1.0, 1.0, 1.0, 0.0]), np.array([1, 1, 0, 0, 1]), 3)
    assert taken == 3
    assert positives == pytest.approx(1 + 2 / 3)
    # and a day with fewer orders than k reviews them all
    assert precision_at_k(np.array([0.2, 0.1]), np.array([0, 1]), 10) == (1.0, 2.0)


def test_entity_precision_at_k_skips_buyers_flagged_on_an_earlier_day():
    # Given buyer a flagged on day one (top buyer), who is the top scorer again on day two,
    # and on day three buyer d whose riskiest order is legit but who also placed a fraud order
    rows = [
        # day, buyer, score, fraud
        (1, "a", 0.9, 1),
        (1, "b", 0.8, 0),
        (1, "c", 0.1, 0),
        (2, "a", 0.95, 1),
        (2, "b", 0.6, 0),
        (2, "c", 0.2, 1),
        (3, "b", 0.97, 1),
        (3, "d", 0.05, 1),
        (3, "d", 0.99, 0),
        (3, "e", 0.9, 0),
    ]
    day, buyer, score, fraud = zip(*rows, strict=True)
    data = EvaluationSet(
        y=np.array(fraud), days=np.array(day), scores={"model": np.array(score)}, entity_ids=np.array(buyer)
    )
    # When evaluated with one review a day
    metrics = evaluate(data, thresholds={}, k_per_day=1)
    # Then day two ranks b (a is already caught): legit; day three ranks d by its max score
    # (b was flagged on day two): d had a fraud order that day
    assert metrics["daily"]["entity_precision_at_k"]["model"] == [1.0, 0.0, 1.0]
    assert metrics["scorers"]["model"]["entity_precision_at_k"]["mean_daily"] == pytest.approx(
        2 / 3, abs=1e-6
    )
    # while order-level precision@1 credits a again on day two
    assert metrics["daily"]["precision_at_k"]["model"] == [1.0, 1.0, 0.0]


# ---------------------------------------------------------------------------------------------
# recall at a fixed false-positive rate, calibration
# ---------------------------------------------------------------------------------------------


def test_recall_at_one_percent_false_positive_rate():
    # Given 1000 legit orders scored 0.000 ... 0.999 and 100 fraud orders: 50 above every legit
    # one, 20 at 0.9955 (4 legit orders above them) and 30 deep in the legit crowd
    legit = np.arange(1000) / 1000
    fraud = np.concatenate([np.full(50, 1.5), np.full(20, 0.9955), np.full(30, 0.5)])
    data = EvaluationSet(
        y=np.concatenate([np.zeros(1000), np.ones(100)]),
        days=np.zeros(1100),
        scores={"model": np.concatenate([legit, fraud])},
    )
    # Then 10 false positives (1%) admit the 70 fraud orders at or above 0.990
    assert evaluate(data, thresholds={}, k_per_day=10)["scorers"]["model"]["recall_at_fpr"] == {
        "fpr": 0.01,
        "recall": 0.7,
    }
    # and 3 false positives (0.3%) only the 50 on top
    assert evaluate(data, thresholds={}, k_per_day=10, fpr=0.003)["scorers"]["model"]["recall_at_fpr"][
        "recall"
    ] == pytest.approx(0.5)


def test_calibration_error_is_near_zero_for_calibrated_scores_and_large_for_miscalibrated():
    rng = np.random.default_rng(0)
    p = rng.random(100_000)
    calibrated = (rng.random(p.size) < p).astype(int)
    overconfident = (rng.random(p.size) < p / 4).astype(int)
    days = np.zeros(p.size)

    good = evaluate(EvaluationSet(y=calibrated, days=days, scores={"model": p}), thresholds={}, k_per_day=1)
    bad = evaluate(EvaluationSet(y=overconfident, days=days, scores={"model": p}), thresholds={}, k_per_day=1)

    assert good["scorers"]["model"]["calibration"]["ece"] < 0.01
    assert good["scorers"]["model"]["calibration"]["brier"] == pytest.approx(1 / 6, abs=0.005)
    assert bad["scorers"]["model"]["calibration"]["ece"] > 0.3  # |p - p/4| averages 0.375
    assert len(bad["scorers"]["model"]["calibration"]["reliability"]) == 15


def test_scores_outside_zero_one_have_no_calibration():
    data = EvaluationSet(
        y=np.array([0, 1, 0, 1]),
        days=np.zeros(4),
        scores={"model": np.array([0.1, 0.9, 0.2, 0.8]), "rules_only": np.array([0.0, 2.0, 3.0, 1.0])},
    )
    metrics = evaluate(data, thresholds={}, k_per_day=1)
    assert metrics["scorers"]["rules_only"]["calibration"] is None
    assert metrics["scorers"]["rules_only"]["roc_auc"] == 0.5


# ---------------------------------------------------------------------------------------------
# thresholds
# ---------------------------------------------------------------------------------------------


def test_cost_thresholds_beat_approving_everything_on_unseen_days():
    # Given thresholds chosen by cost on one period
    calibration, test = synthetic(10, 400, seed=1), synthetic(10, 400, seed=2)
    cost = CostModel()
    chosen = choose_thresholds_for(calibration, cost=cost)
    # When the next period is decided with them
    metrics = evaluate(test, thresholds=chosen, k_per_day=20, cost=cost)
    # Then the model costs less than approving everything, and every scorer declines above review
    model = metrics["scorers"]["model"]
    assert model["decisions"]["cost"]["total_rub"] < metrics["approve_all_cost_rub"]
    assert model["decisions"]["cost"]["saving_share"] > 0.5
    for name, pair in chosen.items():
        assert pair.decline >= pair.review, name
        assert pair.method == "cost"
        assert metrics["scorers"][name]["thresholds"]["method"] == "cost"
    # and the reported cost is the order-by-order cost of those thresholds
    pair = chosen["model"]
    expected = cost_of(test.scores["model"], test.labels, test.amounts_rub, pair.review, pair.decline, cost)
    assert model["decisions"]["cost"]["total_rub"] == pytest.approx(expected, abs=0.01)
    # and the model, which ranks better than its baselines, is also the cheapest
    costs = {n: s["decisions"]["cost"]["total_rub"] for n, s in metrics["scorers"].items()}
    assert costs["model"] < costs["logistic"] < costs["rules_only"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.1, 0.2, 0.5, 0.7, 0.9, 1.0]),
            st.booleans(),
            st.floats(min_value=100, max_value=100_000),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_cost_thresholds_are_the_cheapest_pair_of_any_two_scores(rows):
    scores, fraud, amounts = (np.array(c) for c in zip(*rows, strict=True))
    y = fraud.astype(int)
    cost = CostModel(review_cost_rub=300.0)
    chosen = choose_thresholds(scores, y, amounts, np.zeros(len(y)), cost=cost)
    # Every pair of candidate thresholds, "never" included, costs at least as much
    candidates = [*np.unique(scores), math.inf]
    brute = min(cost_of(scores, y, amounts, r, d, cost) for r in candidates for d in candidates if d >= r)
    assert chosen.decline >= chosen.review
    assert cost_of(scores, y, amounts, chosen.review, chosen.decline, cost) == pytest.approx(brute)
    assert chosen.params["calibration_cost_per_day_rub"] == pytest.approx(brute, abs=0.01)


def test_budget_method_reviews_about_k_orders_a_day():
    data = synthetic(20, 500, seed=3)
    scores, k = np.asarray(data.scores["model"]), 25
    # Reviewers' budget: the orders between REVIEW and DECLINE
    chosen = choose_thresholds(
        scores, data.labels, data.amounts_rub, data.days, cost=CostModel(), review_budget_per_day=k
    )
    reviewed = ((scores >= chosen.review) & (scores < chosen.decline)).sum() / 20
    assert chosen.method == "budget"
    assert k - 0.1 <= reviewed <= k
    assert chosen.params["calibration_reviewed_per_day"] == pytest.approx(reviewed)
    assert chosen.decline > chosen.review
    # Counting the declined in the budget: k a day at or above REVIEW
    inclusive = choose_thresholds(
        scores,
        data.labels,
        data.amounts_rub,
        data.days,
        review_budget_per_day=k,
        decline_precision=0.95,
        budget_includes_declined=True,
    )
    assert k - 0.1 <= (scores >= inclusive.review).sum() / 20 <= k
    declined = scores >= inclusive.decline
    assert inclusive.decline >= inclusive.review
    assert data.labels[declined].mean() >= 0.95


def test_budget_is_never_exceeded_by_tied_scores():
    # Rule severities: 30 orders a day tie at 1 and 3 at 2; room for 10 a day
    scores = np.tile(np.array([2.0] * 3 + [1.0] * 30 + [0.0] * 67), 4)
    y = (scores == 2).astype(int)
    chosen = choose_thresholds(
        scores, y, None, np.repeat(np.arange(4), 100), review_budget_per_day=10, decline_precision=0.99
    )
    # The tied block of 30 does not fit: only the severity-2 orders are flagged, and declined
    assert chosen.review == 2.0
    assert chosen.decline == 2.0


def test_chosen_thresholds_split_into_what_serving_loads_and_how_they_were_chosen():
    chosen = ChosenThresholds(0.1, 0.8, "budget", {"review_budget_per_day": 40})
    assert Thresholds(**chosen.pair()) == Thresholds(review=0.1, decline=0.8)
    assert chosen.selection() == {"method": "budget", "params": {"review_budget_per_day": 40}}


def test_choosing_by_cost_needs_a_cost_model_and_amounts():
    scores, y, days = np.array([0.1, 0.9]), np.array([0, 1]), np.zeros(2)
    with pytest.raises(ValueError, match="cost model"):
        choose_thresholds(scores, y, np.ones(2), days)
    with pytest.raises(ValueError, match="amounts_rub"):
        choose_thresholds(scores, y, None, days, cost=CostModel())


# ---------------------------------------------------------------------------------------------
# logistic-regression baseline
# ---------------------------------------------------------------------------------------------


def test_logistic_baseline_ranks_separable_data_and_tolerates_missing_values():
    rng = np.random.default_rng(4)

    def matrix(n: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.normal(size=(n, 5)).astype(np.float32)
        y = (x[:, 0] + x[:, 1] > 2.0).astype(int)
        x[:, 3] = np.nan  # a feature never observed
        x[rng.random(n) < 0.3, 2] = np.nan  # one often missing
        return x, y

    x_train, y_train = matrix(3000)
    x_test, y_test = matrix(1000)
    x_test[:10, 0] = np.nan  # missing at scoring time where training always had it
    x_test[10, 1] = np.inf

    score = fit_logistic_baseline(x_train, y_train, seed=0)
    scores = score(x_test)

    assert scores.shape == (1000,)
    assert np.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()
    assert roc_auc_score(y_test, scores) > 0.95  # random would be 0.5


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------


def card(version: str = "fraud-20261125-abcdef12") -> ModelCardInfo:
    return ModelCardInfo(
        name="dozor-fraud",
        version=version,
        intended_use="Scores marketplace orders at checkout.",
        data_source="simulated (dozor_training.fraud.simulator, seed 1)",
        simulated=True,
        periods={
            "train": Period("2026-10-01", "2026-10-20", 8000, 240),
            "calibration": Period("2026-10-20", "2026-10-25", 2000, 60),
            "test": Period("2026-10-25", "2026-10-30", 2000, 60),
        },
        feature_names=[f"feature_{i}" for i in range(30)],
        features_defined_in="functions/dozor/domain/features.py",
    )


def test_write_report_writes_every_file(tmp_path: Path):
    # Given thresholds chosen on a calibration period and metrics on the test period
    calibration, test = synthetic(5, 400, seed=5), synthetic(5, 400, seed=6)
    cost = CostModel()
    chosen = choose_thresholds_for(calibration, cost=cost)
    metrics = evaluate(test, thresholds=chosen, k_per_day=15, cost=cost)
    contributions = np.random.default_rng(0).normal(size=(500, 30)) * np.linspace(3, 0.1, 30)

    # When the report is written
    written = write_report(
        tmp_path / "report",
        task=FRAUD_TASK,
        metrics=metrics,
        data=test,
        card=card(),
        contributions=contributions,
        feature_names=[f"feature_{i}" for i in range(30)],
    )

    # Then every file is there and non-trivial
    names = {p.name for p in written}
    plots = {
        "pr_curves.png",
        "roc_curves.png",
        "calibration.png",
        "score_distribution.png",
        "feature_contributions.png",
        "daily_precision_at_k.png",
    }
    assert names == {"metrics.json", "report.md", "MODEL_CARD.md"} | plots
    assert all(p.parent == tmp_path / "report" for p in written)
    assert json.loads((tmp_path / "report" / "metrics.json").read_text()) == metrics
    for name in plots:
        content = (tmp_path / "report" / name).read_bytes()
        assert content.startswith(PNG_SIGNATURE), name
        assert len(content) > 10_000, name

    report = (tmp_path / "report" / "report.md").read_text()
    model_card = (tmp_path / "report" / "MODEL_CARD.md").read_text()
    review, decline = f"{chosen['model'].review:.4g}", f"{chosen['model'].decline:.4g}"
    for text in (report, model_card):
        assert f"REVIEW at score ≥ {review}, DECLINE at ≥ {decline}" in text
        assert "Rules only" in text
        assert "Logistic regression" in text
        assert "expected cost" in text
    for name in plots:
        assert f"]({name})" in report
    assert "buyer precision@15" in report
    assert "fraud-20261125-abcdef12" in model_card
    assert "| calibration | 2026-10-20 | 2026-10-25 | 2,000 | 60 | 3.00% |" in model_card
    assert "30 features" in model_card
    assert "Simulated data" in model_card
    assert "Label delay" in model_card


def test_the_same_report_serves_the_parcel_loss_model(tmp_path: Path):
    # Given a parcel-loss evaluation: no entity, no amounts, no cost model, no contributions
    rng = np.random.default_rng(7)
    y = (rng.random(1500) < 0.05).astype(int)
    test = EvaluationSet(
        y=y,
        days=day_index(1_761_955_200 + np.arange(1500) * 300.0),
        scores={"model": np.where(y == 1, rng.beta(4, 2, 1500), rng.beta(1, 8, 1500))},
    )
    chosen = {
        "model": choose_thresholds(
            test.scores["model"], y, None, test.days, review_budget_per_day=10, decline_precision=0.9
        )
    }
    metrics = evaluate(test, thresholds=chosen, k_per_day=10)
    card_info = card("lost-20261125-0000")

    written = write_report(tmp_path, task=PARCEL_LOSS_TASK, metrics=metrics, data=test, card=card_info)

    report = (tmp_path / "report.md").read_text()
    assert "feature_contributions.png" not in {p.name for p in written}
    assert "lost parcels" in report
    assert "fraud" not in report.lower()
    assert "No cost model" in report
    assert metrics["period"] == ["2025-11-01", "2025-11-06"]  # Moscow days
    assert Period.of(test.days, y) == Period("2025-11-01", "2025-11-06", 1500, int(y.sum()))


def test_evaluation_set_rejects_columns_of_other_lengths():
    with pytest.raises(ValueError, match="days has 2 rows, y has 3"):
        EvaluationSet(y=np.array([0, 1, 0]), days=np.zeros(2), scores={"model": np.zeros(3)})
    with pytest.raises(ValueError, match="'model'"):
        EvaluationSet(y=np.array([0, 1]), days=np.zeros(2), scores={"rules_only": np.zeros(2)})

"""Hard rules, ops lists and the decision policy that combines them with the model's score."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dozor.domain.contracts import DecisionKind, Order, RiskLevel
from dozor.domain.fraud.decisions import combine, decide, model_decision
from dozor.domain.fraud.features import FEATURE_INDEX, FEATURE_NAMES, OrderView
from dozor.domain.fraud.model import Thresholds
from dozor.domain.fraud.rules import _ROW_BY_ROW as ROW_BY_ROW
from dozor.domain.fraud.rules import RULES, RuleHit, evaluate, evaluate_row, evaluate_rows, rules_only_score

if TYPE_CHECKING:
    from .conftest import FeatureReplay

T0 = datetime(2025, 6, 10, 9, 0, tzinfo=UTC)
THRESHOLDS = Thresholds(review=0.3, decline=0.8)
SEVERITY = {DecisionKind.APPROVE: 0, DecisionKind.REVIEW: 1, DecisionKind.DECLINE: 2}
RISK_RANK = {RiskLevel.LOW: 0, RiskLevel.MEDIUM: 1, RiskLevel.HIGH: 2}

MakeOrder = Callable[..., Order]


def row_with(**features: float) -> np.ndarray:
    """A feature row with everything missing except the given features."""
    row = np.full(len(FEATURE_NAMES), np.nan, dtype=np.float32)
    for name, v in features.items():
        row[FEATURE_INDEX[name]] = v
    return row


def rule_ids(make_order: MakeOrder, row: np.ndarray) -> set[str]:
    bare_view = OrderView(order=make_order("o", T0), aggregates={})
    return {h.rule_id for h in evaluate(bare_view, row)}


# ---------------------------------------------------------------------------------------------
# Rules on rows: each fires at its threshold and not just below
# ---------------------------------------------------------------------------------------------

_THRESHOLD_CASES = [
    # rule, features at the threshold, features just short of it
    ("CARD_SHARED_BY_BUYERS", {"card_distinct_buyers_2mo": 3}, {"card_distinct_buyers_2mo": 2}),
    ("CARD_VELOCITY_1H", {"card_orders_1h": 3}, {"card_orders_1h": 2}),
    ("DEVICE_BURST_1H", {"device_orders_1h": 5}, {"device_orders_1h": 4}),
    (
        "DROP_ADDRESS",
        {"address_distinct_buyers_2mo": 4, "buyer_age_days": 0},
        {"address_distinct_buyers_2mo": 3, "buyer_age_days": 0},
    ),
    (
        "DROP_ADDRESS",  # a long-standing buyer at a shared pickup point is not a drop
        {"address_distinct_buyers_2mo": 30, "buyer_age_days": 6.9},
        {"address_distinct_buyers_2mo": 30, "buyer_age_days": 7.0},
    ),
    (
        "NEW_ACCOUNT_HIGH_VALUE",
        {"account_age_days": 0.9, "amount_rub": 50_000},
        {"account_age_days": 0.9, "amount_rub": 49_999},
    ),
    (
        "NEW_ACCOUNT_HIGH_VALUE",
        {"account_age_days": 0.0, "amount_rub": 80_000},
        {"account_age_days": 1.0, "amount_rub": 80_000},
    ),
    (
        "FOREIGN_CARD_HIGH_VALUE",
        {"card_shipping_country_mismatch": 1, "amount_rub": 30_000},
        {"card_shipping_country_mismatch": 1, "amount_rub": 29_999},
    ),
    (
        "FOREIGN_CARD_HIGH_VALUE",
        {"card_shipping_country_mismatch": 1, "amount_rub": 30_000},
        {"card_shipping_country_mismatch": 0, "amount_rub": 30_000},
    ),
    (
        "DISPOSABLE_EMAIL",
        {"email_disposable": 1, "amount_rub": 10_000},
        {"email_disposable": 1, "amount_rub": 9_999},
    ),
    (
        "DISPOSABLE_EMAIL",
        {"email_disposable": 1, "amount_rub": 10_000},
        {"email_disposable": 0, "amount_rub": 10_000},
    ),
]


@pytest.mark.parametrize(
    ("rule_id", "at", "below"), _THRESHOLD_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(_THRESHOLD_CASES)]
)
def test_given_a_row_at_a_rule_threshold_then_it_fires_and_just_below_it_does_not(
    make_order: MakeOrder, rule_id: str, at: dict[str, float], below: dict[str, float]
) -> None:
    assert rule_id in rule_ids(make_order, row_with(**at))
    assert rule_id not in rule_ids(make_order, row_with(**below))


def test_given_every_feature_missing_then_no_rule_fires(make_order: MakeOrder) -> None:
    # Missing values must never match a rule (NaN compares false)
    assert rule_ids(make_order, row_with()) == set()


def test_given_high_amount_but_missing_account_age_then_new_account_rule_does_not_fire(
    make_order: MakeOrder,
) -> None:
    assert "NEW_ACCOUNT_HIGH_VALUE" not in rule_ids(make_order, row_with(amount_rub=1_000_000))


def test_given_rule_hits_then_each_carries_its_rules_action(make_order: MakeOrder) -> None:
    # Given a row matching every rule at once
    row = row_with(
        card_distinct_buyers_2mo=9,
        card_orders_1h=9,
        device_orders_1h=9,
        address_distinct_buyers_2mo=9,
        buyer_age_days=0,
        account_age_days=0,
        amount_rub=100_000,
        card_shipping_country_mismatch=1,
        email_disposable=1,
    )
    bare_view = OrderView(order=make_order("o", T0), aggregates={})
    # When evaluated
    hits = evaluate(bare_view, row)
    # Then every rule is hit once, with its own action
    assert sorted(h.rule_id for h in hits) == sorted(r.id for r in RULES)
    actions = {r.id: r.action for r in RULES}
    assert all(h.action == actions[h.rule_id] for h in hits)


# ---------------------------------------------------------------------------------------------
# Rules on crafted histories, through the real feature code
# ---------------------------------------------------------------------------------------------


def _hits(replay: FeatureReplay, order: Order) -> set[str]:
    order_view, row = replay.score(order)
    return {h.rule_id for h in evaluate(order_view, row)}


def test_given_three_card_orders_in_an_hour_then_the_fourth_is_sent_to_review(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    # Given two quick orders on a card: the third does not trip the velocity rule
    for i in range(2):
        replay.row(make_order(f"o{i}", T0 + timedelta(minutes=5 * i), card="fp-1"))
    assert "CARD_VELOCITY_1H" not in _hits(replay, make_order("o2", T0 + timedelta(minutes=10), card="fp-1"))
    # When a fourth order arrives within the hour
    # Then it does
    assert "CARD_VELOCITY_1H" in _hits(replay, make_order("o3", T0 + timedelta(minutes=15), card="fp-1"))


def test_given_a_card_used_by_three_buyers_then_the_next_order_is_declined_by_rule(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    # Given a card used by buyers A, B, A over two weeks (two distinct buyers)
    for i, buyer in enumerate(["A", "B", "A"]):
        replay.row(make_order(f"o{i}", T0 + timedelta(days=5 * i), buyer=buyer, card="fp-1"))
    order_c = make_order("o3", T0 + timedelta(days=16), buyer="C", card="fp-1")
    # When buyer C uses it, the history holds only two buyers: no hit yet
    assert "CARD_SHARED_BY_BUYERS" not in _hits(replay, order_c)
    # Then the next order on the card (by anyone) sees three buyers
    hits = _hits(replay, make_order("o4", T0 + timedelta(days=17), buyer="A", card="fp-1"))
    assert "CARD_SHARED_BY_BUYERS" in hits


def test_given_an_address_receiving_for_four_buyers_then_drop_address_fires(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    flat = {"country": "RU", "region": "RU-SPE", "city": "СПб", "address": "Невский 10"}
    for i in range(4):
        replay.row(make_order(f"o{i}", T0 + timedelta(days=i), buyer=f"b{i}", shipping=flat))
    assert "DROP_ADDRESS" in _hits(
        replay, make_order("o9", T0 + timedelta(days=5), buyer="b9", shipping=flat)
    )


def test_given_a_day_old_account_placing_a_big_order_then_review(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    young = make_order("o1", T0, amount=60_000, account_created_at=T0 - timedelta(hours=2))
    old = make_order("o2", T0, buyer="b2", amount=60_000, account_created_at=T0 - timedelta(days=200))
    assert "NEW_ACCOUNT_HIGH_VALUE" in _hits(replay, young)
    assert "NEW_ACCOUNT_HIGH_VALUE" not in _hits(replay, old)


def test_given_a_disposable_email_and_a_10k_order_then_review(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    assert "DISPOSABLE_EMAIL" in _hits(replay, make_order("o1", T0, amount=12_000, email="x1@Mailinator.com"))
    assert "DISPOSABLE_EMAIL" not in _hits(replay, make_order("o2", T0, amount=12_000, email="x1@yandex.ru"))


# ---------------------------------------------------------------------------------------------
# Ops lists
# ---------------------------------------------------------------------------------------------

_FULL_ORDER = {
    "card": "fp-1",
    "device": "dev-1",
    "ip": "203.0.113.9",
    "email": "listed@example.com",
    "shipping": {"country": "RU", "region": "RU-MOW", "address": "Арбат 1"},
}


@pytest.mark.parametrize(
    ("kind", "status", "expected"),
    [
        ("card", "block", "LIST_BLOCK_CARD"),
        ("email", "block", "LIST_BLOCK_EMAIL"),
        ("address", "review", "LIST_REVIEW_ADDRESS"),
        ("ip", "review", "LIST_REVIEW_IP"),
        ("buyer", "allow", "LIST_ALLOW_BUYER"),
        ("device", "allow", "LIST_ALLOW_DEVICE"),
    ],
)
def test_given_an_entity_on_an_ops_list_then_the_order_gets_the_list_hit(
    make_order: MakeOrder, replay: FeatureReplay, kind: str, status: str, expected: str
) -> None:
    # Given ops put one of the order's entities on a list
    order = make_order("o1", T0, **_FULL_ORDER)
    replay.set_list_status(replay.entity(order, kind), status)
    # When the order is evaluated
    order_view, row = replay.score(order)
    hits = evaluate(order_view, row)
    # Then exactly that list hit is present, and it decides the order the list's way
    assert [h.rule_id for h in hits if h.rule_id.startswith("LIST_")] == [expected]
    decision = combine(0.5, hits, THRESHOLDS)
    assert (
        decision
        == {
            "block": DecisionKind.DECLINE,
            "review": DecisionKind.REVIEW,
            "allow": DecisionKind.APPROVE,
        }[status]
    )


def test_given_a_blocked_card_and_a_clean_score_then_decline(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    order = make_order("o1", T0, card="fp-stolen")
    replay.set_list_status(replay.entity(order, "card"), "block")
    order_view, row = replay.score(order)
    assert combine(0.0, evaluate(order_view, row), THRESHOLDS) == DecisionKind.DECLINE


def test_given_an_unknown_list_status_then_no_list_hit(make_order: MakeOrder, replay: FeatureReplay) -> None:
    order = make_order("o1", T0, card="fp-1")
    replay.set_list_status(replay.entity(order, "card"), "vip")
    order_view, row = replay.score(order)
    assert not [h for h in evaluate(order_view, row) if h.rule_id.startswith("LIST_")]


def test_given_a_list_on_another_card_then_this_order_is_not_listed(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    replay.set_list_status(replay.entity(make_order("o0", T0, card="fp-bad"), "card"), "block")
    order_view, row = replay.score(make_order("o1", T0, card="fp-good"))
    assert evaluate(order_view, row) == []


# ---------------------------------------------------------------------------------------------
# The decision policy (hypothesis)
# ---------------------------------------------------------------------------------------------

_RULE_HITS = [RuleHit(r.id, r.action) for r in RULES]
_LIST_HITS = [
    RuleHit("LIST_BLOCK_CARD", DecisionKind.DECLINE),
    RuleHit("LIST_BLOCK_BUYER", DecisionKind.DECLINE),
    RuleHit("LIST_REVIEW_IP", DecisionKind.REVIEW),
    RuleHit("LIST_ALLOW_BUYER", DecisionKind.APPROVE),
    RuleHit("LIST_ALLOW_EMAIL", DecisionKind.APPROVE),
]
hit_lists = st.lists(st.sampled_from(_RULE_HITS + _LIST_HITS), max_size=6)
scores = st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def thresholds(draw: st.DrawFn) -> Thresholds:
    review = draw(st.floats(0.01, 0.98))
    return Thresholds(review=review, decline=draw(st.floats(review, 0.99)))


def _is_block(h: RuleHit) -> bool:
    return h.rule_id.startswith("LIST_BLOCK")


def _is_allow(h: RuleHit) -> bool:
    return h.rule_id.startswith("LIST_ALLOW")


@settings(max_examples=100)
@given(score=scores, hits=hit_lists, limits=thresholds())
def test_property_combine_follows_lists_then_the_most_severe_signal(
    score: float, hits: list[RuleHit], limits: Thresholds
) -> None:
    decision = combine(score, hits, limits)
    if any(_is_block(h) for h in hits):
        # Any block-list hit declines, whatever the score or allow lists
        assert decision == DecisionKind.DECLINE
    elif any(_is_allow(h) for h in hits):
        # An allow-list hit without a block approves, even over DECLINE rules and a high score
        assert decision == DecisionKind.APPROVE
    else:
        # Otherwise never less severe than the model or any rule, and equal to one of them
        signals = [model_decision(score, limits), *(h.action for h in hits)]
        assert all(SEVERITY[decision] >= SEVERITY[s] for s in signals)
        assert decision in signals


@settings(max_examples=100)
@given(a=scores, b=scores, hits=hit_lists, limits=thresholds())
def test_property_combine_is_monotonic_in_score(
    a: float, b: float, hits: list[RuleHit], limits: Thresholds
) -> None:
    low, high = sorted((a, b))
    assert SEVERITY[combine(low, hits, limits)] <= SEVERITY[combine(high, hits, limits)]


@settings(max_examples=100)
@given(score=scores, hits=hit_lists, limits=thresholds())
def test_property_adding_a_rule_hit_never_softens_the_decision_without_lists(
    score: float, hits: list[RuleHit], limits: Thresholds
) -> None:
    rule_hits = [h for h in hits if not h.rule_id.startswith("LIST_")]
    assume(rule_hits)
    assert SEVERITY[combine(score, rule_hits[:-1], limits)] <= SEVERITY[combine(score, rule_hits, limits)]


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0.0, DecisionKind.APPROVE),
        (0.299, DecisionKind.APPROVE),
        (0.3, DecisionKind.REVIEW),
        (0.799, DecisionKind.REVIEW),
        (0.8, DecisionKind.DECLINE),
        (1.0, DecisionKind.DECLINE),
    ],
)
def test_given_a_score_then_model_decision_uses_inclusive_thresholds(
    score: float, expected: DecisionKind
) -> None:
    assert model_decision(score, THRESHOLDS) == expected


def _decide(score: float, hits: list[RuleHit], limits: Thresholds = THRESHOLDS):
    return decide(
        order_id="o1",
        score=score,
        hits=hits,
        reasons=[],
        thresholds=limits,
        model_version="test",
        degraded=False,
        decided_at=T0,
    )


@settings(max_examples=100)
@given(score=scores, hits=hit_lists, limits=thresholds())
def test_property_decide_risk_level_agrees_with_the_decision(
    score: float, hits: list[RuleHit], limits: Thresholds
) -> None:
    decision = _decide(score, hits, limits)
    assert decision.decision == combine(score, hits, limits)
    # A declined order is never reported as low risk
    if decision.decision == DecisionKind.DECLINE:
        assert decision.risk_level != RiskLevel.LOW
    # Risk never understates what the score alone says, nor what the decision says
    by_score = {DecisionKind.APPROVE: 0, DecisionKind.REVIEW: 1, DecisionKind.DECLINE: 2}
    assert RISK_RANK[decision.risk_level] >= by_score[model_decision(score, limits)]
    assert RISK_RANK[decision.risk_level] >= SEVERITY[decision.decision]
    assert decision.rules == [h.rule_id for h in hits]
    assert 0.0 <= decision.score <= 1.0


def test_given_an_allow_listed_risky_order_then_approved_but_risk_stays_high() -> None:
    # Given the model scores 0.95 but ops allow-listed the buyer
    decision = _decide(0.95, [RuleHit("LIST_ALLOW_BUYER", DecisionKind.APPROVE)])
    # Then the order is approved, and a reviewer still sees the model found it risky
    assert decision.decision == DecisionKind.APPROVE
    assert decision.risk_level == RiskLevel.HIGH


def test_given_a_low_score_and_a_decline_rule_then_declined_with_high_risk() -> None:
    decision = _decide(0.01, [RuleHit("CARD_SHARED_BY_BUYERS", DecisionKind.DECLINE)])
    assert decision.decision == DecisionKind.DECLINE
    assert decision.risk_level == RiskLevel.HIGH


# ---------------------------------------------------------------------------------------------
# The rules-only baseline score
# ---------------------------------------------------------------------------------------------


def test_given_rule_hits_then_rules_only_score_orders_by_severity() -> None:
    review = RuleHit("CARD_VELOCITY_1H", DecisionKind.REVIEW)
    decline = RuleHit("CARD_SHARED_BY_BUYERS", DecisionKind.DECLINE)
    assert rules_only_score([]) == 0.0
    assert rules_only_score([]) < rules_only_score([review]) < rules_only_score([decline])
    assert rules_only_score([review]) < rules_only_score([review, review])
    assert rules_only_score([decline]) < rules_only_score([decline, review])


def test_given_only_an_allow_hit_then_rules_only_score_is_that_of_no_hits() -> None:
    assert rules_only_score([RuleHit("LIST_ALLOW_BUYER", DecisionKind.APPROVE)]) == rules_only_score([])


@settings(max_examples=100)
@given(hits=hit_lists, extra=st.sampled_from(_RULE_HITS + _LIST_HITS))
def test_property_adding_a_hit_never_lowers_the_rules_only_score(hits: list[RuleHit], extra: RuleHit) -> None:
    assert rules_only_score([*hits, extra]) >= rules_only_score(hits)
    if extra.action != DecisionKind.APPROVE:
        assert rules_only_score([*hits, extra]) > rules_only_score(hits)


# Values on each rule's limits, beside them, and missing: what a batch's columns may hold.
_RULE_VALUES = st.sampled_from(
    [
        np.nan,
        0.0,
        0.5,
        1.0,
        2.9,
        3.0,
        4.0,
        5.0,
        6.99,
        7.0,
        9_999.0,
        10_000.0,
        29_999.0,
        30_000.0,
        50_000.0,
        1e6,
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(_RULE_VALUES, min_size=len(FEATURE_NAMES), max_size=len(FEATURE_NAMES)),
        min_size=1,
        max_size=12,
    )
)
def test_property_a_batch_matches_the_rules_each_of_its_rows_matches(values: list[list[float]]) -> None:
    rows = np.array(values, dtype=np.float32)
    by_row = [evaluate_row(row) for row in rows]
    assert evaluate_rows(rows) == by_row
    # A batch past the row-by-row size tests each rule on its columns: the same rows, repeated.
    repeats = ROW_BY_ROW // len(rows) + 1
    assert evaluate_rows(np.tile(rows, (repeats, 1))) == by_row * repeats

"""Reasons: which features `explain` picks, and that every feature reads as a sentence."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dozor.domain.fraud.explanations import describe, explain
from dozor.domain.fraud.features import FEATURE_INDEX, FEATURE_NAMES

N = len(FEATURE_NAMES)


def contributions_with(**pushes: float) -> np.ndarray:
    c = np.zeros(N, dtype=np.float32)
    for name, v in pushes.items():
        c[FEATURE_INDEX[name]] = v
    return c


def full_row(v: float = 1.0) -> np.ndarray:
    return np.full(N, v, dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# explain
# ---------------------------------------------------------------------------------------------


def test_given_seven_positive_pushes_then_the_five_strongest_in_descending_order() -> None:
    # Given seven features pushing the score up by different amounts, the rest zero
    pushes = {
        "card_orders_1h": 0.9,
        "amount_rub": 0.2,
        "account_age_days": 1.4,
        "foreign_card": 0.05,
        "device_orders_1h": 0.6,
        "email_disposable": 0.3,
        "local_hour": 0.01,
    }
    # When explained
    reasons = explain(full_row(), contributions_with(**pushes))
    # Then the top five by contribution come first to last
    assert [r.feature for r in reasons] == [
        "account_age_days",
        "card_orders_1h",
        "device_orders_1h",
        "email_disposable",
        "amount_rub",
    ]
    assert [r.contribution for r in reasons] == pytest.approx([1.4, 0.9, 0.6, 0.3, 0.2], abs=1e-4)


def test_given_two_positive_pushes_among_negatives_then_only_the_positive_ones() -> None:
    c = contributions_with(card_orders_1h=0.5, amount_rub=0.1, buyer_age_days=-2.0, local_hour=-0.4)
    reasons = explain(full_row(), c)
    assert [r.feature for r in reasons] == ["card_orders_1h", "amount_rub"]


def test_given_no_positive_push_then_the_most_negative_ones_most_negative_first() -> None:
    # Given an order the model found safe: every push is down or nothing
    c = contributions_with(buyer_age_days=-2.0, local_hour=-0.4, amount_rub=-1.1, channel=-0.05)
    # When explained
    reasons = explain(full_row(), c)
    # Then it says why it is safe, most reassuring first
    assert [r.feature for r in reasons[:4]] == ["buyer_age_days", "amount_rub", "local_hour", "channel"]
    assert all(r.contribution <= 0 for r in reasons)


def test_given_a_missing_value_then_reason_value_is_none_and_says_not_available() -> None:
    # Given the device feature was missing and pushed the score up
    row = full_row(2.0)
    row[FEATURE_INDEX["device_orders_1h"]] = np.nan
    # When explained
    (reason,) = explain(row, contributions_with(device_orders_1h=0.7))
    # Then the value is None (not NaN, which JSON cannot carry) and the text says so
    assert reason.value is None
    assert reason.text.startswith("No ")
    assert reason.text.endswith("was available")
    assert "device orders 1h" in reason.text


def test_given_a_known_value_then_reason_carries_it_and_its_sentence() -> None:
    row = full_row(0.0)
    row[FEATURE_INDEX["card_orders_1h"]] = 4
    (reason,) = explain(row, contributions_with(card_orders_1h=0.7))
    assert reason.value == 4.0
    assert reason.text == describe("card_orders_1h", 4.0)
    assert "4" in reason.text


_rows = hnp.arrays(np.float32, N, elements=st.one_of(st.just(np.nan), st.floats(-1e6, 1e6, width=32)))
_contributions = hnp.arrays(np.float32, N, elements=st.floats(-5, 5, width=32))


@settings(max_examples=80, deadline=None)
@given(row=_rows, contributions=_contributions, top=st.integers(1, 8))
def test_property_explain_picks_the_strongest_positive_or_else_the_most_negative(
    row: np.ndarray, contributions: np.ndarray, top: int
) -> None:
    # When any arbitrary row is explained
    reasons = explain(row, contributions, top=top)
    picked = [FEATURE_INDEX[r.feature] for r in reasons]
    others = [i for i in range(N) if i not in picked]
    positives = int((contributions > 0).sum())

    # Then it never says more than asked for, and names no feature twice
    assert len(reasons) <= top
    assert len(set(picked)) == len(picked)
    values = [float(contributions[i]) for i in picked]
    if positives:
        # the strongest positive pushes, strongest first, none stronger left out
        assert len(reasons) == min(top, positives)
        assert all(v > 0 for v in values)
        assert values == sorted(values, reverse=True)
        assert min(values) >= max(float(contributions[i]) for i in others)
    else:
        # the most negative pushes, most negative first, none weaker left out
        assert len(reasons) == min(top, N)
        assert values == sorted(values)
        assert max(values) <= min(float(contributions[i]) for i in others)
    # And each reason describes its own value, missing ones as None
    for r, i in zip(reasons, picked, strict=True):
        assert (r.value is None) == bool(np.isnan(row[i]))
        assert r.text == describe(r.feature, float(row[i]))


# ---------------------------------------------------------------------------------------------
# describe
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "v", "sentence"),
    [  # read and checked by hand: what a reviewer sees
        ("card_orders_1h", 3.0, "This card was in 3 earlier orders in the last hour"),
        ("buyer_amount_30d", 12_500.0, "The buyer was in 12,500 RUB of orders in the last 30 days"),
        ("amount_rub", 1_234_567.0, "The order is worth 1,234,567 RUB"),
        ("seller_age_days", 12.5, "The seller was first seen 12.5 days ago"),
        ("device_age_days", 0.0, "This device has never been seen before"),
        ("account_age_days", 0.5, "The account was created less than a day ago"),
        ("local_hour", 8.5, "The order was placed at 08:30 the buyer's local time"),
        (
            "seller_fraud_rate_30d",
            0.125,
            "12.5% of the seller's orders of the last 30 days were reported as fraud",
        ),
        ("card_fraud_labels_lifetime", 2.0, "This card was in 2 orders reported as fraud before"),
        (
            "address_distinct_buyers_2mo",
            4.0,
            "This shipping address was used with 4 different buyers in the last two months",
        ),
        ("shipping_remoteness", 3.0, "Shipping to a very remote region"),
        ("device_orders_1h", math.nan, "No device orders 1h was available"),
    ],
)
def test_given_a_value_then_describe_writes_the_sentence_a_reviewer_reads(
    name: str, v: float, sentence: str
) -> None:
    assert describe(name, v) == sentence


_SHARES = {
    "high_risk_category_share",
    "email_digit_share",
    "seller_fraud_rate_7d",
    "seller_fraud_rate_30d",
    "seller_loss_rate_30d",
}
_CODES = {"payment_method": (1, 5), "channel": (1, 3), "shipping_remoteness": (0, 3), "day_of_week": (0, 6)}
_FLAGS = {
    "foreign_card",
    "card_shipping_country_mismatch",
    "ip_shipping_country_mismatch",
    "card_ip_country_mismatch",
    "email_disposable",
}
_WINDOW_WORDS = {"_1h": "hour", "_24h": "24 hours", "_7d": "7 days", "_30d": "30 days", "_2mo": "two months"}


@st.composite
def feature_values(draw: st.DrawFn) -> tuple[str, float]:
    """A feature and a value it can take."""
    name = draw(st.sampled_from(FEATURE_NAMES))
    if name in _SHARES:
        value = draw(st.floats(0, 1))
    elif name in _CODES:
        value = float(draw(st.integers(*_CODES[name])))
    elif name in _FLAGS:
        value = float(draw(st.booleans()))
    elif name == "local_hour":
        value = draw(st.floats(0, 23.99))
    else:
        value = draw(st.one_of(st.integers(0, 5_000_000).map(float), st.floats(0, 1e7)))
    return name, value


@settings(max_examples=400, deadline=None)
@given(feature_values())
def test_property_every_feature_reads_as_a_sentence_with_its_unit_and_formatted_numbers(
    feature: tuple[str, float],
) -> None:
    name, v = feature
    text = describe(name, v)
    # A sentence of words: never the generic fallback, never a raw feature name or identifier
    assert text != f"{name} is {v:g}"
    assert "_" not in text and name not in text
    assert text == text.strip() and (text[0].isupper() or text[0].isdigit())
    # Numbers as people write them: thousands grouped, at most one decimal, no exponent
    assert not re.search(r"\d{4}", text.replace(":", " ")), text
    assert not re.search(r"\d\.\d\d", text), text
    assert not re.search(r"\de[+-]?\d", text), text
    # With its unit: money in RUB, shares in %, ages in days, windows named
    if name.endswith("_rub") or "_amount_" in name:
        assert "RUB" in text, text
    if name in _SHARES:
        assert "%" in text, text
    if name.endswith("_age_days"):
        assert "days" in text or "never" in text or "less than a day" in text, text
    for suffix, words in _WINDOW_WORDS.items():
        if name.endswith(suffix) and "_vs_" not in name and name not in _SHARES:
            assert words in text, text


def test_given_any_missing_feature_then_describe_says_so_in_words() -> None:
    for name in FEATURE_NAMES:
        text = describe(name, math.nan)
        assert text.startswith("No ") and text.endswith(" was available") and "_" not in text, text


@pytest.mark.parametrize(
    "name",
    [
        "foreign_card",
        "card_shipping_country_mismatch",
        "ip_shipping_country_mismatch",
        "card_ip_country_mismatch",
        "email_disposable",
    ],
)
def test_given_a_yes_no_feature_then_yes_and_no_read_differently(name: str) -> None:
    assert describe(name, 1.0) != describe(name, 0.0)


@pytest.mark.parametrize(
    ("name", "v", "fragments"),
    [
        ("card_orders_1h", 3.0, ("card", "3", "hour")),
        ("buyer_amount_30d", 12_500.0, ("buyer", "12,500", "30 days")),
        ("address_distinct_buyers_2mo", 4.0, ("address", "4", "buyers")),
        ("device_age_days", 0.0, ("device", "never")),
        ("seller_age_days", 12.5, ("seller", "12.5")),
        ("local_hour", 8.5, ("08:30",)),
        ("shipping_remoteness", 3.0, ("very remote",)),
        ("account_age_days", 0.5, ("less than a day",)),
        ("amount_vs_buyer_avg_30d", 2.5, ("2.5x",)),
    ],
)
def test_given_representative_values_then_the_sentence_states_them(
    name: str, v: float, fragments: tuple[str, ...]
) -> None:
    text = describe(name, v)
    for fragment in fragments:
        assert fragment in text, text


def test_given_buyer_distinct_addresses_then_the_sentence_spells_addresses() -> None:
    text = describe("buyer_distinct_addresses_2mo", 3.0)
    assert "different addresses" in text

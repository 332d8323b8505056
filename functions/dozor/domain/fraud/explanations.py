"""Reasons a reviewer can read: the features that pushed an order's score, as sentences."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import partial

import numpy as np

from dozor.domain.contracts import Reason
from dozor.domain.fraud.features import FEATURE_NAMES

_WHO = {
    "buyer": "The buyer",
    "card": "This card",
    "device": "This device",
    "ip": "This IP address",
    "email": "This email address",
    "address": "This shipping address",
    "seller": "The seller",
}
_WINDOW = {"1h": "hour", "24h": "24 hours", "7d": "7 days", "30d": "30 days"}
_PAYMENT = {1: "a card", 2: "SBP", 3: "a wallet", 4: "cash on delivery", 5: "installments"}
_REMOTENESS = {
    0: "Moscow or St Petersburg",
    1: "a well-served region",
    2: "a remote region",
    3: "a very remote region",
}

_ENTITY_FEATURE = re.compile(
    r"^(?P<kind>[a-z]+)_(?P<what>orders|amount|age|lifetime|distinct)_?(?P<rest>.*)$"
)


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _yes(value: float) -> bool:
    return value >= 0.5


# One sentence per order feature, formatted only when that feature is picked.
_ORDER_TEXTS: dict[str, Callable[[float], str]] = {
    "amount_rub": lambda v: f"The order is worth {_n(v)} RUB",
    "item_quantity": lambda v: f"The order has {_n(v)} items",
    "item_lines": lambda v: f"The order has {_n(v)} different lines",
    "item_categories": lambda v: f"The order spans {_n(v)} categories",
    "max_unit_price_rub": lambda v: f"The most expensive item costs {_n(v)} RUB",
    "high_risk_category_share": lambda v: f"{v:.0%} of the order is in resale-prone categories",
    "account_age_days": lambda v: (
        "The account was created less than a day ago" if v < 1 else f"The account is {_n(v)} days old"
    ),
    "local_hour": lambda v: (
        f"The order was placed at {int(v):02d}:{int(v % 1 * 60):02d} the buyer's local time"
    ),
    "day_of_week": lambda v: (
        "The order was placed on a weekend" if v >= 5 else "The order was placed on a weekday"
    ),
    "payment_method": lambda v: f"Paid with {_PAYMENT.get(int(v), 'an unusual method')}",
    "channel": lambda v: (
        "Placed " + {1: "on the website", 2: "in the app", 3: "through the API"}.get(int(v), "elsewhere")
    ),
    "foreign_card": lambda v: "The card was issued abroad" if _yes(v) else "The card was issued in Russia",
    "card_shipping_country_mismatch": lambda v: (
        "The card's country differs from the shipping country"
        if _yes(v)
        else "The card's country matches the shipping country"
    ),
    "ip_shipping_country_mismatch": lambda v: (
        "The IP address is in another country than the shipping address"
        if _yes(v)
        else "The IP address is in the shipping country"
    ),
    "card_ip_country_mismatch": lambda v: (
        "The card's country differs from the IP address's country"
        if _yes(v)
        else "The card and the IP address are in the same country"
    ),
    "shipping_remoteness": lambda v: f"Shipping to {_REMOTENESS.get(int(v), 'an unknown region')}",
    "email_disposable": lambda v: (
        "The email address is on a disposable-mail domain"
        if _yes(v)
        else "The email address is on a regular domain"
    ),
    "email_digit_share": lambda v: f"{v:.0%} of the email's name is digits",
    "amount_vs_buyer_avg_30d": lambda v: f"The order is {v:,.1f}x the buyer's average over 30 days",
    "amount_vs_seller_avg_30d": lambda v: f"The order is {v:,.1f}x the seller's average order over 30 days",
    "seller_spike_24h": lambda v: f"The seller's last 24 hours are {v:,.1f}x its daily average",
}


def _order_sentence(feature: str, v: float) -> str | None:
    text = _ORDER_TEXTS.get(feature)
    return text(v) if text is not None else None


_LABEL_FEATURE = re.compile(r"^(?P<kind>[a-z]+)_fraud_labels_(?P<window>30d|lifetime)$")


_LABEL_TEXTS: dict[str, Callable[[float], str]] = {
    "seller_fraud_rate_7d": lambda v: (
        f"{v:.1%} of the seller's orders of the last 7 days were reported as fraud"
    ),
    "seller_fraud_rate_30d": lambda v: (
        f"{v:.1%} of the seller's orders of the last 30 days were reported as fraud"
    ),
    "seller_loss_rate_30d": lambda v: (
        f"{v:.1%} of the seller's parcels of the last 30 days were reported lost"
    ),
    "address_losses_30d": lambda v: (
        f"Parcels to this shipping address were reported lost {_n(v)} times in 30 days"
    ),
    "buyer_losses_30d": lambda v: f"The buyer reported {_n(v)} parcels lost or not received in 30 days",
}


def _label_sentence(feature: str, v: float) -> str | None:
    text = _LABEL_TEXTS.get(feature)
    if text is not None:
        return text(v)
    m = _LABEL_FEATURE.match(feature)
    if not m or m["kind"] not in _WHO:
        return None
    when = "in the last 30 days" if m["window"] == "30d" else "before"
    return f"{_WHO[m['kind']]} was in {_n(v)} orders reported as fraud {when}"


def _entity_sentence(feature: str, v: float) -> str | None:
    text = _entity_describer(feature)
    return text(v) if text is not None else None


def describe(feature: str, value: float) -> str:
    """One sentence about a feature's value."""
    if math.isnan(value):
        return f"No {feature.replace('_', ' ')} was available"
    return (
        _order_sentence(feature, value)
        or _label_sentence(feature, value)
        or _entity_sentence(feature, value)
        or f"{feature} is {value:g}"
    )


def _describer(feature: str) -> Callable[[float], str]:
    """`describe` for one feature, its name parsed once rather than for every reason given."""
    missing = f"No {feature.replace('_', ' ')} was available"
    text: Callable[[float], str | None] | None = _ORDER_TEXTS.get(feature) or _LABEL_TEXTS.get(feature)
    if text is None:
        label = _LABEL_FEATURE.match(feature)
        if label and label["kind"] in _WHO:
            text = partial(_label_sentence, feature)
        else:
            text = _entity_describer(feature) or partial(_fallback, feature)
    sentence = text
    return lambda v: missing if math.isnan(v) else (sentence(v) or "")


def _entity_describer(feature: str) -> Callable[[float], str] | None:
    m = _ENTITY_FEATURE.match(feature)
    if not m or m["kind"] not in _WHO:
        return None
    who, what, rest = _WHO[m["kind"]], m["what"], m["rest"]
    if what == "orders":
        window = _WINDOW[rest]
        return lambda v: f"{who} was in {_n(v)} earlier orders in the last {window}"
    if what == "amount":
        window = _WINDOW[rest]
        return lambda v: f"{who} was in {_n(v)} RUB of orders in the last {window}"
    if what == "age":
        return lambda v: (
            f"{who} has never been seen before" if v < 1 / 24 else f"{who} was first seen {v:,.1f} days ago"
        )
    if what == "lifetime":
        return lambda v: f"{who} was in {_n(v)} earlier orders in all"
    others = rest.removeprefix("distinct_").removesuffix("_2mo")
    return lambda v: f"{who} was used with {_n(v)} different {others} in the last two months"


def _fallback(feature: str, v: float) -> str:
    return f"{feature} is {v:g}"


_DESCRIBERS = tuple(_describer(name) for name in FEATURE_NAMES)


def explain(row: np.ndarray, contributions: np.ndarray, top: int = 5) -> list[Reason]:
    """The features that pushed the score up most; if none did, the ones that pulled it down most."""
    return explain_ranked(row, contributions, np.argsort(-contributions), top)


def explain_rows(rows: np.ndarray, contributions: np.ndarray, top: int = 5) -> list[list[Reason]]:
    """`explain` for each row of a batch: the rankings sorted in one call, and the batch read into
    Python floats at once (a numpy row or scalar per order costs more than the numbers)."""
    ranked = np.argsort(-contributions, axis=1)[:, :top].tolist()
    values, pushes = rows.tolist(), contributions.tolist()
    explained = []
    for n, first in enumerate(ranked):
        push = pushes[n]
        picked = [i for i in first if push[i] > 0]
        if not picked:
            picked = np.argsort(contributions[n])[:top].tolist()
        explained.append(_reasons(values[n], push, picked))
    return explained


def explain_ranked(row: np.ndarray, contributions: np.ndarray, ranked: np.ndarray, top: int) -> list[Reason]:
    """`explain` given ``ranked = argsort(-contributions)``."""
    pushes = contributions.tolist()  # Python floats: indexing numpy scalar by scalar costs more
    picked = [i for i in ranked[:top].tolist() if pushes[i] > 0]
    if not picked:
        picked = np.argsort(contributions)[:top].tolist()
    return _reasons(row.tolist(), pushes, picked)


def _reasons(values: list[float], pushes: list[float], picked: list[int]) -> list[Reason]:
    reasons = []
    for i in picked:
        value = float(values[i])  # a float whatever the row's dtype, as before
        nan = math.isnan(value)
        reasons.append(
            _reason(
                {
                    "feature": FEATURE_NAMES[i],
                    # A whole number is its own rounding (round() is ~0.3 us; counts are most values).
                    "value": None if nan else value if value.is_integer() else round(value, 4),
                    "contribution": round(pushes[i], 4),
                    "text": _DESCRIBERS[i](value),
                }
            )
        )
    return reasons


# The model's own validator, without `BaseModel.__init__`'s Python around it (five per order).
_reason: Callable[[dict[str, object]], Reason] = Reason.__pydantic_validator__.validate_python

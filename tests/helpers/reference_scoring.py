"""The scoring path written plainly, as it was before it was made fast: the reference the fast
path must decide exactly like (`tests/unit/fraud/test_decision_identity.py`).

Features, explanations, rules, the decision policy and pseudonyms, each the straightforward way:
dicts by feature name, a regex per sentence, a mapping per rule, pydantic copies, one HMAC per
value. Only the tables (feature names, sentence texts, the rules themselves) are shared with the
code under test; what is computed from them is computed here again.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import numpy as np

from dozor.domain import aggregates as agg
from dozor.domain.contracts import RUB_PER_UNIT, Decision, DecisionKind, Order, Reason, RiskLevel
from dozor.domain.fraud.decisions import combine, model_decision
from dozor.domain.fraud.explanations import (
    _ENTITY_FEATURE,
    _WHO,
    _WINDOW,
    _label_sentence,
    _n,
    _order_sentence,
)
from dozor.domain.fraud.features import (
    CHANNELS,
    DISPOSABLE_EMAIL_DOMAINS,
    FEATURE_NAMES,
    HIGH_RISK_CATEGORIES,
    LIFETIME_LABEL_KINDS,
    LINKS,
    MOSCOW,
    NAN,
    PAYMENT_METHODS,
    PLURAL,
    OrderView,
)
from dozor.domain.fraud.model import Thresholds
from dozor.domain.fraud.rules import _LIST_ACTIONS, RULES, RuleHit
from dozor.domain.geography import REGIONS, normalise_region, remoteness_tier
from dozor.domain.privacy import _LETTERS, address_key, normalise


def compute(v: OrderView) -> np.ndarray:
    """The feature vector, filled by feature name."""
    values = dict.fromkeys(FEATURE_NAMES, NAN)
    values.update(_order_features(v))
    values.update(_label_rates(v))
    created = v.order.created_at.timestamp()
    for kind, a in v.aggregates.items():
        for window in agg.WINDOWS:
            values[f"{kind}_orders_{window.name}"] = a.counts[window.name]
        values[f"{kind}_amount_24h"] = a.amounts["24h"]
        values[f"{kind}_amount_30d"] = a.amounts["30d"]
        values[f"{kind}_age_days"] = _days(created - a.first_seen) if a.first_seen else 0.0
        values[f"{kind}_lifetime_orders"] = a.lifetime_orders
        for other in LINKS.get(kind, ()):
            values[f"{kind}_distinct_{PLURAL[other]}_2mo"] = float(a.links.get(other, 0))
        values[f"{kind}_fraud_labels_30d"] = a.fraud_labels["30d"]
        if kind in LIFETIME_LABEL_KINDS:
            values[f"{kind}_fraud_labels_lifetime"] = a.lifetime_fraud_labels
    return np.array([values[name] for name in FEATURE_NAMES], dtype=np.float32)


def _label_rates(v: OrderView) -> dict[str, float]:
    seller = v.aggregates.get("seller")
    address = v.aggregates.get("address")
    buyer = v.aggregates.get("buyer")
    rates: dict[str, float] = {}
    if seller:
        # Labels reported in the window over orders placed in it: not the same cohort, but what
        # a seller's recent record looks like to ops, and it needs no per-order bookkeeping.
        rates["seller_fraud_rate_7d"] = _share(seller.fraud_labels["7d"], seller.counts["7d"])
        rates["seller_fraud_rate_30d"] = _share(seller.fraud_labels["30d"], seller.counts["30d"])
        rates["seller_loss_rate_30d"] = _share(seller.losses["30d"], seller.counts["30d"])
    if address:
        rates["address_losses_30d"] = address.losses["30d"]
    if buyer:
        rates["buyer_losses_30d"] = buyer.losses["30d"]
    return rates


def _share(part: float, whole: float) -> float:
    return min(part / whole, 1.0) if whole > 0 else NAN


def _days(seconds: float) -> float:
    return max(seconds, 0.0) / 86400.0


def _ratio(amount: float, total: float, count: float) -> float:
    return amount / (total / count) if count > 0 and total > 0 else NAN


def _flag(condition: bool | None) -> float:
    return NAN if condition is None else float(condition)


def _mismatch(a: str | None, b: str | None) -> float:
    return NAN if not a or not b else float(a != b)


def _order_features(v: OrderView) -> dict[str, float]:
    o = v.order
    rate = RUB_PER_UNIT[o.currency]
    items = o.items
    lines_rub = [(i.unit_price or 0.0) * i.quantity * rate for i in items]
    total_lines = sum(lines_rub)
    risky = sum(
        x for x, i in zip(lines_rub, items, strict=True) if (i.category or "").lower() in HIGH_RISK_CATEGORIES
    )
    payment = o.payment
    shipping = o.shipping
    region = normalise_region(shipping.region) if shipping else None
    offset = timedelta(hours=REGIONS[region].utc_offset) if region in REGIONS else MOSCOW
    local = o.created_at.astimezone(UTC) + offset
    email = o.buyer.email or ""
    local_part, _, domain = email.rpartition("@")
    ship_country = shipping.country if shipping else None
    card_country = payment.card_country if payment else None
    tier = remoteness_tier(region)
    buyer = v.aggregates.get("buyer")
    seller = v.aggregates.get("seller")
    return {
        "amount_rub": o.amount_rub,
        "item_quantity": float(sum(i.quantity for i in items)) if items else NAN,
        "item_lines": float(len(items)) if items else NAN,
        "item_categories": float(len({i.category for i in items if i.category})) if items else NAN,
        "max_unit_price_rub": max((i.unit_price or 0.0) * rate for i in items) if items else NAN,
        "high_risk_category_share": risky / total_lines if total_lines > 0 else NAN,
        "account_age_days": _days((o.created_at - o.buyer.account_created_at).total_seconds())
        if o.buyer.account_created_at
        else NAN,
        "local_hour": local.hour + local.minute / 60.0,
        "day_of_week": float(local.weekday()),
        "payment_method": float(PAYMENT_METHODS[payment.method]) if payment and payment.method else NAN,
        "channel": float(CHANNELS[o.channel]) if o.channel else NAN,
        "foreign_card": _flag(card_country != "RU" if card_country else None),
        "card_shipping_country_mismatch": _mismatch(card_country, ship_country),
        "ip_shipping_country_mismatch": _mismatch(o.ip_country, ship_country),
        "card_ip_country_mismatch": _mismatch(card_country, o.ip_country),
        "shipping_remoteness": float(tier) if tier is not None else NAN,
        "email_disposable": _flag(domain.lower() in DISPOSABLE_EMAIL_DOMAINS if domain else None),
        "email_digit_share": sum(c.isdigit() for c in local_part) / len(local_part) if local_part else NAN,
        "amount_vs_buyer_avg_30d": _ratio(o.amount_rub, buyer.amounts["30d"], buyer.counts["30d"])
        if buyer
        else NAN,
        "amount_vs_seller_avg_30d": _ratio(o.amount_rub, seller.amounts["30d"], seller.counts["30d"])
        if seller
        else NAN,
        "seller_spike_24h": seller.counts["24h"] / max(1.0, seller.counts["30d"] / 30.0) if seller else NAN,
    }


def _entity_sentence(feature: str, v: float) -> str | None:
    m = _ENTITY_FEATURE.match(feature)
    if not m or m["kind"] not in _WHO:
        return None
    who, what, rest = _WHO[m["kind"]], m["what"], m["rest"]
    if what == "orders":
        return f"{who} was in {_n(v)} earlier orders in the last {_WINDOW[rest]}"
    if what == "amount":
        return f"{who} was in {_n(v)} RUB of orders in the last {_WINDOW[rest]}"
    if what == "age":
        return (
            f"{who} has never been seen before" if v < 1 / 24 else f"{who} was first seen {v:,.1f} days ago"
        )
    if what == "lifetime":
        return f"{who} was in {_n(v)} earlier orders in all"
    others = rest.removeprefix("distinct_").removesuffix("_2mo")
    return f"{who} was used with {_n(v)} different {others} in the last two months"


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


def explain(row: np.ndarray, contributions: np.ndarray, top: int = 5) -> list[Reason]:
    """The features that pushed the score up most; if none did, the ones that pulled it down most."""
    order = np.argsort(-contributions)
    picked = [i for i in order[:top] if contributions[i] > 0]
    if not picked:
        picked = list(np.argsort(contributions)[:top])
    reasons = []
    for i in picked:
        value = float(row[i])
        reasons.append(
            Reason(
                feature=FEATURE_NAMES[i],
                value=None if math.isnan(value) else round(value, 4),
                contribution=round(float(contributions[i]), 4),
                text=describe(FEATURE_NAMES[i], value),
            )
        )
    return reasons


def evaluate_rules(view: OrderView, row: np.ndarray) -> list[RuleHit]:
    hits = [
        RuleHit(f"LIST_{status.upper()}_{kind.upper()}", _LIST_ACTIONS[status])
        for kind, aggregates in sorted(view.aggregates.items())
        if (status := aggregates.list_status) in _LIST_ACTIONS
    ]
    facts: Mapping[str, float] = {name: float(row[i]) for i, name in enumerate(FEATURE_NAMES)}
    return hits + [RuleHit(rule.id, rule.action) for rule in RULES if rule.matches(facts)]


_RISK_FOR = {
    DecisionKind.APPROVE: RiskLevel.LOW,
    DecisionKind.REVIEW: RiskLevel.MEDIUM,
    DecisionKind.DECLINE: RiskLevel.HIGH,
}


def decide(
    *,
    order_id: str,
    score: float,
    hits: list[RuleHit],
    reasons: list[Reason],
    thresholds: Thresholds,
    model_version: str,
    degraded: bool,
    decided_at: datetime,
) -> Decision:
    kind = combine(score, hits, thresholds)
    by_score = _RISK_FOR[model_decision(score, thresholds)]
    risk = max(by_score, _RISK_FOR[kind], key=list(RiskLevel).index)
    return Decision(
        order_id=order_id,
        decision=kind,
        score=round(score, 6),
        risk_level=risk,
        reasons=reasons,
        rules=[h.rule_id for h in hits],
        model_version=model_version,
        degraded=degraded,
        decided_at=decided_at,
    )


def pii_hash(key: bytes, kind: str, value: str) -> str:
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


def pseudonymise(order: Order, key: bytes) -> Order:
    buyer_changes: dict[str, str] = {}
    if order.buyer.email:
        buyer_changes["email"] = _email_pseudonym(order.buyer.email, key)
    if order.buyer.phone:
        buyer_changes["phone"] = pii_hash(key, "phone", order.buyer.phone)
    changes: dict[str, object] = {}
    if buyer_changes:
        changes["buyer"] = order.buyer.model_copy(update=buyer_changes)
    if order.ip:
        changes["ip"] = pii_hash(key, "ip", order.ip)
    if order.payment and order.payment.card_fingerprint:
        changes["payment"] = order.payment.model_copy(
            update={"card_fingerprint": pii_hash(key, "card", order.payment.card_fingerprint)}
        )
    address = address_key(order)
    if order.shipping and address:
        changes["shipping"] = order.shipping.model_copy(update={"address": pii_hash(key, "address", address)})
    return order.model_copy(update=changes) if changes else order


def _email_pseudonym(email: str, key: bytes) -> str:
    local, at, domain = email.strip().rpartition("@")
    if not at:
        local, domain = email.strip(), ""
    normalised = normalise(email)
    stream = ""
    block = 0
    while len(stream) < len(local):
        stream += pii_hash(key, "email", f"{normalised}#{block}")
        block += 1
    pseudonym = "".join(
        str(int(h, 16) % 10) if c.isdigit() else _LETTERS[int(h, 16)]
        for c, h in zip(local, stream, strict=False)
    )
    return f"{pseudonym}@{domain.lower()}" if at else pseudonym

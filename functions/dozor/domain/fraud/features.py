"""Order features: one module for serving and for training replay, so the two cannot drift.

An order is turned into the entities it touches (`identify`), those entities' aggregates are read
as they stood just before the order (`aggregates.summarise`), and `compute` folds order fields and
aggregates into one float vector in `FEATURE_NAMES` order. Missing data is NaN, which XGBoost
routes down its learned default branch.

"Before the order" means the orders stored before it (see `dozor.domain.aggregates` on arrival
order): in time order that is every order with an earlier ``created_at``; an order that arrives
late also sees the newer orders already stored where their buckets fall in its windows, and its
``*_age_days`` are measured from the entity's earliest stored order (0 when it is the earliest).
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from dozor.domain import aggregates as agg
from dozor.domain.contracts import RUB_PER_UNIT, Order
from dozor.domain.geography import REGIONS, normalise_region
from dozor.domain.privacy import PiiHasher, address_key, normalise

NAN = math.nan

# Entities whose history says something about an order. Personal ones are stored hashed.
ENTITY_KINDS = ("buyer", "card", "device", "ip", "email", "address", "seller")
PERSONAL_KINDS = frozenset({"card", "ip", "email", "address", "phone"})

# Which distinct neighbours each entity remembers (per month): a card used by many buyers, or an
# address receiving for many buyers, is the classic stolen-card / drop-address shape.
LINKS: dict[str, tuple[str, ...]] = {
    "buyer": ("card", "address", "device"),
    "card": ("buyer",),
    "device": ("buyer",),
    "ip": ("buyer",),
    "address": ("buyer",),
}

PLURAL = {"buyer": "buyers", "card": "cards", "address": "addresses", "device": "devices"}

# Entities whose whole history of fraud labels matters, not just the last 30 days: a buyer, card,
# device or address that was once in a chargeback stays suspicious.
LIFETIME_LABEL_KINDS = ("buyer", "card", "device", "address")

HIGH_RISK_CATEGORIES = frozenset({"electronics", "phones", "gift_cards", "jewelry"})
DISPOSABLE_EMAIL_DOMAINS = frozenset(
    {
        "mailinator.com",
        "tempmail.com",
        "10minutemail.com",
        "guerrillamail.com",
        "yopmail.com",
        "trashmail.com",
    }
)
PAYMENT_METHODS = {"card": 1, "sbp": 2, "wallet": 3, "cod": 4, "installments": 5}
CHANNELS = {"web": 1, "app": 2, "api": 3}
MOSCOW = timedelta(hours=3)
_MOSCOW_MINUTES = 180


def _entity_feature_names() -> list[str]:
    names = []
    for kind in ENTITY_KINDS:
        names += [f"{kind}_orders_{w.name}" for w in agg.WINDOWS]
        names += [f"{kind}_amount_24h", f"{kind}_amount_30d", f"{kind}_age_days", f"{kind}_lifetime_orders"]
        names += [f"{kind}_distinct_{PLURAL[other]}_2mo" for other in LINKS.get(kind, ())]
    return names


def _label_feature_names() -> list[str]:
    names = [f"{kind}_fraud_labels_30d" for kind in ENTITY_KINDS]
    names += [f"{kind}_fraud_labels_lifetime" for kind in LIFETIME_LABEL_KINDS]
    return [
        *names,
        "seller_fraud_rate_7d",
        "seller_fraud_rate_30d",
        "seller_loss_rate_30d",
        "address_losses_30d",
        "buyer_losses_30d",
    ]


ORDER_FEATURES = [
    "amount_rub",
    "item_quantity",
    "item_lines",
    "item_categories",
    "max_unit_price_rub",
    "high_risk_category_share",
    "account_age_days",
    "local_hour",
    "day_of_week",
    "payment_method",
    "channel",
    "foreign_card",
    "card_shipping_country_mismatch",
    "ip_shipping_country_mismatch",
    "card_ip_country_mismatch",
    "shipping_remoteness",
    "email_disposable",
    "email_digit_share",
    "amount_vs_buyer_avg_30d",
    "amount_vs_seller_avg_30d",
    "seller_spike_24h",
]

FEATURE_NAMES: tuple[str, ...] = tuple(ORDER_FEATURES + _entity_feature_names() + _label_feature_names())
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


def identify(order: Order, hasher: PiiHasher) -> dict[str, agg.Entity]:
    """The entities this order touches, keyed by kind; personal values hashed."""
    raw: dict[str, str | None] = {
        "buyer": order.buyer.id,
        "seller": order.seller.id,
        "device": order.device_id,
        "card": order.payment.card_fingerprint if order.payment else None,
        "ip": order.ip,
        "email": normalise(order.buyer.email) if order.buyer.email else None,
        "address": address_key(order),
    }
    entities = {}
    for kind, value in raw.items():
        if value:
            stored = hasher(kind, value) if kind in PERSONAL_KINDS else value
            entities[kind] = agg.Entity(kind, stored)
    return entities


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order with its entities' aggregates just before it."""

    order: Order
    aggregates: dict[str, agg.EntityAggregates]
    created: float | None = None  # ``order.created_at.timestamp()``, when `view` took it


def view(order: Order, entities: dict[str, agg.Entity], snapshot: agg.Snapshot) -> OrderView:
    at = order.created_at
    created = at.timestamp()  # once: an aware datetime's timestamp() is not cheap
    epoch = int(created)
    return OrderView(
        order,
        {
            kind: agg.summarise(e, at, snapshot, LINKS.get(kind, ()), epoch=epoch)
            for kind, e in entities.items()
        },
        created,
    )


def updates(
    order: Order, entities: Mapping[str, agg.Entity], kinds: Container[str] | None = None
) -> list[agg.ContainerUpdate]:
    """The counter updates that record this order for every entity it touches (or those of ``kinds``)."""
    # Plain loops: a comprehension is a call of its own on Python 3.11, eight an order here.
    counted: list[tuple[agg.Entity, dict[str, str] | None]] = []
    for kind, entity in entities.items():
        if kinds is not None and kind not in kinds:
            continue
        links = None
        for other in LINKS.get(kind, ()):
            linked = entities.get(other)
            if linked is not None:
                if links is None:
                    links = {}
                links[other] = linked.value
        counted.append((entity, links))
    return agg.order_updates(counted, order.amount_rub, int(order.created_at.timestamp()))


def label_updates(
    entities: Iterable[agg.Entity], reported_at: datetime, label: str
) -> list[agg.ContainerUpdate]:
    """The counter updates that record one label (aggregates.FRAUD or LOSS) against an order's entities."""
    return [u for entity in entities for u in agg.label_updates_for(entity, reported_at, label)]


@dataclass(frozen=True)
class _KindColumns:
    """Where one entity kind's features go in the row, resolved once instead of per order."""

    orders: tuple[tuple[str, int], ...]  # (window, column)
    amount_24h: int
    amount_30d: int
    age: int
    lifetime: int
    links: tuple[tuple[str, int], ...]  # (linked kind, column)
    link_kinds: tuple[str, ...]
    fraud_30d: int
    fraud_lifetime: int | None
    # An entity never seen writes zeros only: its window, age, lifetime and link features are one
    # run of columns, ``start`` to ``start + len(zeros)`` (checked when the columns are built).
    start: int
    zeros: list[float]


def _kind_columns(kind: str) -> _KindColumns:
    i = FEATURE_INDEX
    run = [f"{kind}_orders_{w.name}" for w in agg.WINDOWS]
    run += [f"{kind}_amount_24h", f"{kind}_amount_30d", f"{kind}_age_days", f"{kind}_lifetime_orders"]
    run += [f"{kind}_distinct_{PLURAL[other]}_2mo" for other in LINKS.get(kind, ())]
    start = i[run[0]]
    if list(FEATURE_NAMES[start : start + len(run)]) != run:  # pragma: no cover - a layout change
        raise AssertionError(f"{kind}'s entity features are not one run of columns")
    return _KindColumns(
        start=start,
        zeros=[0.0] * len(run),
        orders=tuple((w.name, i[f"{kind}_orders_{w.name}"]) for w in agg.WINDOWS),
        amount_24h=i[f"{kind}_amount_24h"],
        amount_30d=i[f"{kind}_amount_30d"],
        age=i[f"{kind}_age_days"],
        lifetime=i[f"{kind}_lifetime_orders"],
        links=tuple((other, i[f"{kind}_distinct_{PLURAL[other]}_2mo"]) for other in LINKS.get(kind, ())),
        link_kinds=LINKS.get(kind, ()),
        fraud_30d=i[f"{kind}_fraud_labels_30d"],
        fraud_lifetime=i.get(f"{kind}_fraud_labels_lifetime"),
    )


_COLUMNS = {kind: _kind_columns(kind) for kind in ENTITY_KINDS}
_WIDTH = len(FEATURE_NAMES)
_ORDER_WIDTH = len(ORDER_FEATURES)  # the row starts with the order's own features, in this order
_SELLER_RATES = (
    FEATURE_INDEX["seller_fraud_rate_7d"],
    FEATURE_INDEX["seller_fraud_rate_30d"],
    FEATURE_INDEX["seller_loss_rate_30d"],
)
_ADDRESS_LOSSES = FEATURE_INDEX["address_losses_30d"]
_BUYER_LOSSES = FEATURE_INDEX["buyer_losses_30d"]


def compute(v: OrderView) -> np.ndarray:
    """The feature vector (float32, `FEATURE_NAMES` order) of one order."""
    # A list filled by precomputed column and converted once: per-element numpy writes and
    # per-order name lookups cost more than the arithmetic (this runs for every order scored
    # and every order of a training replay).
    values = _order_values(v)
    values += [NAN] * (_WIDTH - _ORDER_WIDTH)
    aggregates = v.aggregates
    created = v.order.created_at.timestamp() if v.created is None else v.created
    for kind, a in aggregates.items():  # an entity absent from the order keeps NaN features
        c = _COLUMNS[kind]
        if a is agg.unseen(c.link_kinds):  # most entities of an order: zeros, in three writes
            values[c.start : c.start + len(c.zeros)] = c.zeros
            values[c.fraud_30d] = 0.0
            if c.fraud_lifetime is not None:
                values[c.fraud_lifetime] = 0.0
            continue
        counts = a.counts
        for window, column in c.orders:
            values[column] = counts[window]
        values[c.amount_24h] = a.amounts["24h"]
        values[c.amount_30d] = a.amounts["30d"]
        first_seen = a.first_seen
        values[c.age] = max(created - first_seen, 0.0) / 86400.0 if first_seen else 0.0
        values[c.lifetime] = a.lifetime_orders
        if c.links:
            links = a.links
            for other, column in c.links:
                values[column] = float(links.get(other, 0))
        values[c.fraud_30d] = a.fraud_labels["30d"]
        if c.fraud_lifetime is not None:
            values[c.fraud_lifetime] = a.lifetime_fraud_labels
    seller = aggregates.get("seller")
    if seller:
        # Labels reported in the window over orders placed in it: not the same cohort, but what
        # a seller's recent record looks like to ops, and it needs no per-order bookkeeping.
        counts = seller.counts
        seven, thirty, lost = _SELLER_RATES
        values[seven] = _share(seller.fraud_labels["7d"], counts["7d"])
        values[thirty] = _share(seller.fraud_labels["30d"], counts["30d"])
        values[lost] = _share(seller.losses["30d"], counts["30d"])
    if address := aggregates.get("address"):
        values[_ADDRESS_LOSSES] = address.losses["30d"]
    if buyer := aggregates.get("buyer"):
        values[_BUYER_LOSSES] = buyer.losses["30d"]
    return np.array(values, dtype=np.float32)


def _share(part: float, whole: float) -> float:
    return min(part / whole, 1.0) if whole > 0 else NAN


def _days(seconds: float) -> float:
    return max(seconds, 0.0) / 86400.0


def _ratio(amount: float, total: float, count: float) -> float:
    return amount / (total / count) if count > 0 and total > 0 else NAN


def _mismatch(a: str | None, b: str | None) -> float:
    return NAN if not a or not b else float(a != b)


def _order_values(v: OrderView) -> list[float]:
    """The order's own features, in `ORDER_FEATURES` order."""
    o = v.order
    rate = RUB_PER_UNIT[o.currency]
    amount = o.amount * rate
    items = o.items
    if items:
        quantity = 0
        total_lines = risky = 0.0
        top_price = 0.0
        categories = set()
        for item in items:  # one pass: what a line is worth, in roubles, and what it is
            price = item.unit_price or 0.0
            line = price * item.quantity * rate
            total_lines += line
            quantity += item.quantity
            top_price = max(top_price, price * rate)
            if category := item.category:
                categories.add(category)
                if category.lower() in HIGH_RISK_CATEGORIES:
                    risky += line
        item_values = [float(quantity), float(len(items)), float(len(categories)), top_price]
        risky_share = risky / total_lines if total_lines > 0 else NAN
    else:
        item_values, risky_share = [NAN, NAN, NAN, NAN], NAN
    payment = o.payment
    shipping = o.shipping
    region = normalise_region(shipping.region) if shipping else None
    known = REGIONS.get(region) if region else None
    # The buyer's wall clock in whole minutes from the epoch (UTC counts no leap seconds): the
    # hour, minute and weekday of UTC plus the region's offset, without building datetimes.
    created = o.created_at.timestamp() if v.created is None else v.created
    local = int(created) // 60 + (known.utc_offset * 60 if known else _MOSCOW_MINUTES)
    hour, minute = divmod(local % 1440, 60)
    email = o.buyer.email or ""
    local_part, _, domain = email.rpartition("@")
    ship_country = shipping.country if shipping else None
    card_country = payment.card_country if payment else None
    ip_country = o.ip_country
    account_created = o.buyer.account_created_at
    method = payment.method if payment else None
    buyer = v.aggregates.get("buyer")
    seller = v.aggregates.get("seller")
    return [
        amount,
        *item_values,
        risky_share,
        _days((o.created_at - account_created).total_seconds()) if account_created else NAN,
        hour + minute / 60.0,
        float((local // 1440 + 3) % 7),  # 1970-01-01 was a Thursday (weekday 3)
        float(PAYMENT_METHODS[method]) if method else NAN,
        float(CHANNELS[o.channel]) if o.channel else NAN,
        float(card_country != "RU") if card_country else NAN,
        _mismatch(card_country, ship_country),
        _mismatch(ip_country, ship_country),
        _mismatch(card_country, ip_country),
        float(known.tier) if known else NAN,
        float(domain.lower() in DISPOSABLE_EMAIL_DOMAINS) if domain else NAN,
        sum(map(str.isdigit, local_part)) / len(local_part) if local_part else NAN,
        _ratio(amount, buyer.amounts["30d"], buyer.counts["30d"]) if buyer else NAN,
        _ratio(amount, seller.amounts["30d"], seller.counts["30d"]) if seller else NAN,
        seller.counts["24h"] / max(1.0, seller.counts["30d"] / 30.0) if seller else NAN,
    ]

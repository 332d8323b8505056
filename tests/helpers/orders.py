"""Orders for the domain tests: a builder, and a feature replay on the in-memory store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from dozor.adapters.memory import InMemoryAggregates
from dozor.domain import aggregates as agg
from dozor.domain.contracts import Order
from dozor.domain.fraud.features import OrderView, compute, identify, updates, view
from dozor.domain.privacy import PiiHasher

TEST_PII_KEY = b"unit-test-pii-key"


def build_order(
    order_id: str,
    created_at: datetime,
    *,
    buyer: str = "buyer-1",
    seller: str = "seller-1",
    amount: float = 1_000.0,
    currency: str = "RUB",
    card: str | None = None,
    card_country: str | None = None,
    device: str | None = None,
    ip: str | None = None,
    ip_country: str | None = None,
    email: str | None = None,
    account_created_at: datetime | None = None,
    shipping: dict[str, Any] | None = None,
    items: list[dict[str, Any]] | None = None,
) -> Order:
    """An order with only the fields a test cares about; everything else is absent."""
    payload: dict[str, Any] = {
        "order_id": order_id,
        "created_at": created_at,
        "buyer": {"id": buyer, "email": email, "account_created_at": account_created_at},
        "seller": {"id": seller},
        "amount": amount,
        "currency": currency,
        "ip": ip,
        "ip_country": ip_country,
        "device_id": device,
        "shipping": shipping,
        "items": items or [],
    }
    if card is not None or card_country is not None:
        payload["payment"] = {"method": "card", "card_fingerprint": card, "card_country": card_country}
    return Order.model_validate(payload)


class FeatureReplay:
    """Scores orders one after another the way serving does: read `keys_for`, compute, then count."""

    def __init__(self, key: bytes = TEST_PII_KEY) -> None:
        self.hasher = PiiHasher(key)
        self.store = InMemoryAggregates()

    def score(self, order: Order) -> tuple[OrderView, np.ndarray]:
        entities = identify(order, self.hasher)
        snapshot = self.store.read(agg.keys_for(entities.values(), order.created_at))
        order_view = view(order, entities, snapshot)
        row = compute(order_view)
        self.store.apply(updates(order, entities))
        return order_view, row

    def row(self, order: Order) -> np.ndarray:
        return self.score(order)[1]

    def entity(self, order: Order, kind: str) -> agg.Entity:
        return identify(order, self.hasher)[kind]

    def set_list_status(self, entity: agg.Entity, status: str) -> None:
        """Put an entity on an ops list, as ops tooling does: a `list` attribute on its profile."""
        self.store.items.setdefault((entity.pk, agg.PROFILE), {})["list"] = status

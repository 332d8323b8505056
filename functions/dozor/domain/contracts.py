"""Public contracts: the order Dozor scores and the decision it returns (DESIGN.md § Contracts).

Only `order_id`, `created_at`, `buyer.id`, `seller.id`, `amount` and `currency` are required;
every other field is optional and scored as missing. Changing a field here is a contract change.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
CountryCode = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2}$")
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)]

# An order above this (in roubles, after conversion) is a data error, not a purchase.
MAX_ORDER_AMOUNT_RUB = 50_000_000.0

# Fixed reference rates to roubles. Scoring needs the order size in one currency, not today's
# exact rate; the table is versioned with the model that was trained on it.
RUB_PER_UNIT: dict[str, float] = {
    "RUB": 1.0,
    "CNY": 12.5,
    "USD": 90.0,
    "EUR": 98.0,
    "KZT": 0.18,
    "BYN": 27.5,
}
Currency = Literal["RUB", "CNY", "USD", "EUR", "KZT", "BYN"]


class _Model(BaseModel):
    # Unknown fields are ignored, not rejected: checkout payloads grow faster than contracts.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Buyer(_Model):
    id: Id
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320)] | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = None
    account_created_at: AwareDatetime | None = None


class Seller(_Model):
    id: Id


class Payment(_Model):
    method: Literal["card", "sbp", "wallet", "cod", "installments"] | None = None
    card_fingerprint: ShortText | None = None
    card_bin: Annotated[str, StringConstraints(pattern=r"^[0-9]{6,8}$")] | None = None
    card_country: CountryCode | None = None


class Shipping(_Model):
    country: CountryCode | None = None
    region: ShortText | None = None  # ISO 3166-2 code, e.g. RU-MOW, RU-SPE, RU-KAM
    city: ShortText | None = None
    postal_code: ShortText | None = None
    address: ShortText | None = None


class Item(_Model):
    sku: ShortText | None = None
    category: ShortText | None = None
    quantity: Annotated[int, Field(ge=1, le=10_000)] = 1
    unit_price: Annotated[float, Field(ge=0, le=MAX_ORDER_AMOUNT_RUB)] | None = None


class Order(_Model):
    """An order to score: the body of `POST /v1/orders/score` and the order event payload."""

    order_id: Id
    created_at: AwareDatetime
    buyer: Buyer
    seller: Seller
    amount: Annotated[float, Field(gt=0, le=MAX_ORDER_AMOUNT_RUB, allow_inf_nan=False)]
    currency: Currency
    ip: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    ip_country: CountryCode | None = None
    device_id: ShortText | None = None
    channel: Literal["web", "app", "api"] | None = None
    payment: Payment | None = None
    shipping: Shipping | None = None
    items: Annotated[list[Item], Field(max_length=200)] = []

    @property
    def amount_rub(self) -> float:
        return self.amount * RUB_PER_UNIT[self.currency]


class DecisionKind(StrEnum):
    APPROVE = "APPROVE"
    REVIEW = "REVIEW"
    DECLINE = "DECLINE"


class RiskLevel(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class Reason(_Model):
    """One feature's push on the score, with a sentence a reviewer can read."""

    feature: str
    value: float | None
    contribution: float
    text: str


class Decision(_Model):
    order_id: str
    decision: DecisionKind
    score: Annotated[float, Field(ge=0, le=1)]
    risk_level: RiskLevel
    reasons: list[Reason]
    rules: list[str]
    model_version: str
    degraded: bool = False
    decided_at: datetime

"""Public contracts: the order Dozor scores and the decision it returns (DESIGN.md § Contracts).

Only `order_id`, `created_at`, `buyer.id`, `seller.id`, `amount` and `currency` are required;
every other field is optional and scored as missing. Changing a field here is a contract change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from dozor.domain.errors import InvalidRecordError

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
CountryCode = Annotated[
    str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2}$")
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)]

# The instants Dozor accepts. The year bounds hold everywhere (training histories included) and
# keep every date computation (bucket starts, windows, expiry) clear of datetime's overflow at
# years 1 and 9999. "Not more than a day ahead of now" depends on the clock, so it is checked only
# where records arrive live: `parse_record` validates with ``context={"now": ...}``, and the
# scoring service checks the API's orders with `ensure_not_ahead` (simulated histories run
# months past today's date and must still validate).
EARLIEST_YEAR = 2000
LATEST_YEAR = 2099
MAX_AHEAD = timedelta(days=1)


def _sane_instant(value: datetime, info: ValidationInfo) -> datetime:
    # The naive year first: comparing an aware year-1 or year-9999 instant converts it to UTC,
    # which may itself overflow.
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"year {value.year} is outside {EARLIEST_YEAR}-{LATEST_YEAR}")
    now = info.context.get("now") if isinstance(info.context, dict) else None
    if isinstance(now, datetime) and value > now + MAX_AHEAD:
        raise ValueError("more than a day ahead of now")
    return value


# In the OpenAPI document: the year bounds as a pattern on the year as written (what
# `_sane_instant` checks). "Not more than a day ahead of now" moves with the clock, which no JSON
# Schema keyword can say: the description says it, and the API answers 422 naming the field.
Instant = Annotated[
    AwareDatetime,
    AfterValidator(_sane_instant),
    Field(
        description=f"An ISO 8601 date-time with its UTC offset, in the years {EARLIEST_YEAR}-"
        f"{LATEST_YEAR} as written, and no more than a day ahead of now when it arrives (422 otherwise)",
        examples=["2026-11-25T10:15:30+03:00"],
        json_schema_extra={"pattern": "^20[0-9]{2}-"},  # 2000-2099
    ),
]


def ensure_not_ahead(field: str, value: datetime | None, now: datetime) -> None:
    """`InvalidRecordError` naming ``field`` when ``value`` is more than a day ahead of ``now``."""
    if value is not None and value > now + MAX_AHEAD:
        raise InvalidRecordError(f"invalid order: {field} (more than a day ahead of now)", (field,))


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

# Every currency above has two decimal places. Amounts are kept to that unit: finer fractions are
# no money anyone pays, and summed into the Features table's counters they would need more than
# the 38 significant digits a DynamoDB number holds.
MINOR_UNIT_DIGITS = 2


def _to_minor_unit(amount: float) -> float:
    return round(amount, MINOR_UNIT_DIGITS)


MinorUnit = AfterValidator(_to_minor_unit)


def _zero_or_a_minor_unit(amount: float) -> float:
    # Zero is a real order (fully discounted: promo code, bonus points, gift certificate; promo
    # abuse is a fraud pattern, so it must be scored, not refused). A non-zero amount below one
    # minor unit is no money anyone pays: a unit error, refused rather than rounded to zero.
    if 0 < amount < 10**-MINOR_UNIT_DIGITS:
        raise ValueError("amount must be 0 (fully discounted) or at least 0.01")
    return amount


class _Model(BaseModel):
    # Unknown fields are ignored, not rejected: checkout payloads grow faster than contracts.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Buyer(_Model):
    id: Id
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320)] | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = None
    account_created_at: Instant | None = None


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
    unit_price: (
        Annotated[float, Field(ge=0, le=MAX_ORDER_AMOUNT_RUB, allow_inf_nan=False), MinorUnit] | None
    ) = None


class Order(_Model):
    """An order to score: the body of `POST /v1/orders/score` and the order event payload."""

    order_id: Id
    created_at: Instant
    buyer: Buyer
    seller: Seller
    currency: Currency  # before amount: the amount's cap is checked in roubles
    amount: Annotated[
        float,
        Field(
            ge=0,
            # The cap in the currency with the fewest roubles per unit; each currency's own cap
            # (50M RUB once converted) is checked below.
            le=MAX_ORDER_AMOUNT_RUB / min(RUB_PER_UNIT.values()),
            allow_inf_nan=False,
            description="0 (a fully discounted order) or at least 0.01, at most 50,000,000 RUB once "
            "converted; rounded to 0.01",
            json_schema_extra={"anyOf": [{"const": 0}, {"minimum": 10**-MINOR_UNIT_DIGITS}]},
        ),
    ]
    ip: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    ip_country: CountryCode | None = None
    device_id: ShortText | None = None
    channel: Literal["web", "app", "api"] | None = None
    payment: Payment | None = None
    shipping: Shipping | None = None
    items: Annotated[list[Item], Field(max_length=200)] = []

    @field_validator("amount")
    @classmethod
    def _amount_at_most_the_cap_in_roubles(cls, amount: float, info: ValidationInfo) -> float:
        # Zero or a minor unit, rounded to it, then the cap: one Python call per order, not three.
        amount = _to_minor_unit(_zero_or_a_minor_unit(amount))
        currency = info.data.get("currency")
        if currency is not None and amount * RUB_PER_UNIT[currency] > MAX_ORDER_AMOUNT_RUB:
            raise ValueError(f"amount must be at most {MAX_ORDER_AMOUNT_RUB:,.0f} RUB once converted")
        return amount

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

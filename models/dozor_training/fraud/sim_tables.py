"""The simulator's reference data and small array helpers.

Catalogue categories and prices, hourly and weekly traffic profiles, issuer BINs, IP prefixes,
names, e-mail domains and street names: plausible, not real tables. `Ids` turns per-kind counters
into unique random-looking ids without drawing from the generator, and `Columns` holds orders as
indices into the entity tables until they become payloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dozor.domain.contracts import RUB_PER_UNIT

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]
Item = dict[str, Any]  # an order line as the contract has it: sku, category, quantity, unit_price


# name, median unit price (RUB), log-sd of the price, share of sellers, max quantity per line
CATEGORIES: tuple[tuple[str, float, float, float, int], ...] = (
    ("clothing", 1400.0, 0.6, 20.0, 3),
    ("shoes", 2800.0, 0.5, 7.0, 2),
    ("home", 1100.0, 0.8, 14.0, 3),
    ("beauty", 650.0, 0.6, 10.0, 4),
    ("accessories", 350.0, 0.7, 10.0, 5),
    ("toys", 1100.0, 0.7, 7.0, 3),
    ("sports", 1900.0, 0.7, 5.0, 2),
    ("auto_parts", 2100.0, 0.8, 4.0, 2),
    ("electronics", 3500.0, 0.8, 13.0, 2),
    ("phones", 19000.0, 0.45, 4.0, 1),
    ("computers", 48000.0, 0.45, 2.5, 1),
    ("jewelry", 1800.0, 0.9, 2.0, 2),
    ("gift_cards", 2000.0, 0.7, 1.5, 3),
)
CAT_NAMES = tuple(c[0] for c in CATEGORIES)
CAT = {name: i for i, name in enumerate(CAT_NAMES)}
CAT_MEDIAN = np.array([c[1] for c in CATEGORIES])
CAT_SIGMA = np.array([c[2] for c in CATEGORIES])
CAT_SELLER_SHARE = np.array([c[3] for c in CATEGORIES]) / sum(c[3] for c in CATEGORIES)
CAT_MAX_QTY = np.array([c[4] for c in CATEGORIES])
GIFT = CAT["gift_cards"]
GIFT_DENOMINATIONS = np.array([500.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0, 10000.0])

# fmt: off
# Orders per local hour (buyer's time zone), and fraud per Moscow hour: flatter, leaning to night.
LEGIT_HOURLY = np.array([
    1.1, 0.6, 0.35, 0.2, 0.15, 0.2, 0.45, 0.9, 1.4, 1.8, 2.1, 2.3,
    2.5, 2.5, 2.4, 2.4, 2.5, 2.7, 3.0, 3.4, 3.7, 3.6, 3.0, 2.0,
])
FRAUD_HOURLY_MSK = np.array([
    2.4, 2.6, 2.6, 2.4, 2.0, 1.6, 1.4, 1.4, 1.6, 1.8, 2.0, 2.2,
    2.2, 2.2, 2.1, 2.1, 2.1, 2.2, 2.3, 2.4, 2.5, 2.5, 2.5, 2.4,
])
WEEKLY = (1.06, 1.03, 1.00, 0.98, 0.93, 0.93, 1.07)  # Monday..Sunday; Sunday evening is busiest
MSK_OFFSET = 3

# Plausible issuer BINs per card country (made up, not a real BIN table).
BINS: dict[str, tuple[str, ...]] = {
    "RU": ("220220", "220070", "220030", "220001", "220015", "220024", "220100", "427601", "546938",
           "415428"),
    "KZ": ("440563", "400303", "539545"),
    "AM": ("408306", "535100"),
    "KG": ("417337", "527883"),
    "BY": ("424291", "510126"),
    "UZ": ("986001", "860002"),
    "CN": ("622848", "621700", "625802"),
    "TR": ("540667", "454360"),
    "AE": ("462845", "535573"),
    "US": ("414720", "426684", "542418", "440066"),
    "GB": ("475129", "465859"),
    "DE": ("455600", "520036"),
    "FR": ("497010", "513691"),
    "PL": ("431940", "535470"),
}
# Legit buyers: mostly Russian cards; the rest mostly Central Asian / Armenian cards opened since 2022.
LEGIT_CARD_COUNTRIES = (
    ("RU", 94.5), ("KZ", 2.0), ("AM", 1.0), ("KG", 0.8), ("BY", 0.7), ("UZ", 0.4), ("CN", 0.3), ("TR", 0.2),
    ("AE", 0.1),
)
STOLEN_FOREIGN_CARD_COUNTRIES = (
    ("US", 30.0), ("GB", 12.0), ("DE", 12.0), ("FR", 8.0), ("PL", 8.0), ("TR", 8.0), ("KZ", 12.0),
    ("AE", 5.0), ("CN", 5.0),
)

# /16 prefixes by country and kind (plausible, not an allocation table).
RU_HOME = (
    "95.24", "178.176", "188.162", "46.242", "77.37", "85.140", "91.76", "109.252", "217.66", "37.110",
    "92.100", "94.25", "79.165",
)
RU_MOBILE = ("31.173", "176.59", "85.26", "213.87", "188.170", "37.144")
RU_HOSTING = ("45.90", "185.244", "194.87", "5.188", "91.240")
ABROAD: dict[str, tuple[str, ...]] = {  # where travellers shop from
    "TR": ("85.105", "78.180"), "TH": ("171.96", "49.228"), "AE": ("94.200", "86.98"),
    "EG": ("41.33", "197.34"), "GE": ("31.146", "188.129"), "AM": ("37.252", "46.70"),
    "KZ": ("2.132", "95.56"), "CN": ("36.110", "112.97"), "VN": ("113.160", "14.226"),
    "UZ": ("84.54", "213.230"),
}
HOSTING: dict[str, tuple[str, ...]] = {  # VPN exits and proxies
    "NL": ("185.107", "89.38"), "DE": ("89.246", "138.201"), "US": ("104.28", "45.79"),
    "FI": ("95.216", "65.21"), "LT": ("185.25", "88.119"), "GB": ("51.89", "185.159"),
}

MALE_FIRST = (
    "ivan", "dmitry", "sergey", "alexey", "andrey", "maxim", "nikita", "artem", "mikhail", "pavel", "egor",
)
FEMALE_FIRST = (
    "anna", "maria", "elena", "olga", "natalia", "ekaterina", "tatiana", "irina", "yulia", "daria",
)
LAST = (
    "ivanov", "smirnov", "kuznetsov", "popov", "vasiliev", "petrov", "sokolov", "mikhailov", "novikov",
    "fedorov", "morozov", "volkov", "alekseev", "lebedev", "semenov", "egorov", "pavlov", "kozlov",
)
EMAIL_DOMAINS = (
    "mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "list.ru", "rambler.ru", "icloud.com",
)
EMAIL_DOMAIN_P = np.array([30, 28, 20, 5, 4, 3, 4, 6], dtype=float) / 100
# Some are on the scoring blocklist and some are not: blocklists are never complete.
DISPOSABLE_DOMAINS = (
    "mailinator.com", "yopmail.com", "10minutemail.com", "guerrillamail.com", "sharklasers.com",
    "dropmail.me", "tempmail.plus",
)
FRAUD_EMAIL_DOMAINS = ("gmail.com", "mail.ru", "yandex.ru", "outlook.com", "proton.me")
# "улица Садовая", but "проспект Мира": the adjective names only go with улица.
STREETS = (
    "Советская", "Садовая", "Молодёжная", "Центральная", "Школьная", "Лесная", "Набережная", "Октябрьская",
    "Комсомольская", "Первомайская", "Московская", "Заводская", "Юбилейная", "Солнечная", "Северная",
)
STREETS_ANY_KIND = ("Ленина", "Мира", "Гагарина", "Пушкина", "Кирова", "Победы", "Строителей", "Чехова")
STREET_KINDS = ("ул.", "пр-т", "пер.", "б-р", "ш.")

# fmt: on
PAYMENT_METHODS = ("card", "sbp", "wallet", "installments", "cod")
DELIVERY_DAYS = (9.0, 12.0, 17.0, 24.0)  # China to the door, by remoteness tier


def _mix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64's finaliser: a bijection on 64-bit integers, so distinct inputs give distinct ids."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class Ids:
    """Opaque ids that look random but are unique: a per-kind counter through a seeded bijection."""

    _KINDS = ("order", "buyer", "seller", "card", "device", "phone")

    def __init__(self, rng: np.random.Generator) -> None:
        salts = rng.integers(0, 2**62, size=len(self._KINDS), dtype=np.int64).tolist()
        self._salt: dict[str, int] = dict(zip(self._KINDS, salts, strict=True))
        self._used: dict[str, int] = dict.fromkeys(self._KINDS, 0)

    def raw(self, kind: str, n: int) -> list[int]:
        first = self._used[kind]
        self._used[kind] = first + n
        counters = np.arange(first, first + n, dtype=np.uint64) + np.uint64(self._salt[kind])
        return list(_mix64(counters).tolist())

    def hex(self, kind: str, prefix: str, n: int) -> list[str]:
        return [f"{prefix}{v:016x}" for v in self.raw(kind, n)]

    def devices(self, app: Sequence[bool]) -> list[str]:
        """App devices get a UUID (IDFV / app instance id), web ones a 32-hex browser fingerprint."""
        raw = self.raw("device", 2 * len(app))
        out = []
        for i, is_app in enumerate(app):
            h = f"{raw[2 * i]:016x}{raw[2 * i + 1]:016x}"
            out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}".upper() if is_app else h)
        return out


def weighted(rng: np.random.Generator, weights: FloatArray, size: int) -> IntArray:
    cw = np.cumsum(weights)
    idx: IntArray = np.minimum(np.searchsorted(cw, rng.random(size) * cw[-1], side="right"), len(weights) - 1)
    return idx.astype(np.int64)


def table_p(table: Sequence[tuple[str, float]]) -> tuple[list[str], FloatArray]:
    names = [k for k, _ in table]
    w = np.array([v for _, v in table], dtype=float)
    return names, w / w.sum()


def rfc3339(ts: IntArray) -> list[str]:
    return [s + "Z" for s in np.datetime_as_string(ts.astype("datetime64[s]"), unit="s").tolist()]


def rub_prices(rng: np.random.Generator, cats: IntArray, z: FloatArray) -> FloatArray:
    """Unit prices in roubles for category indices and standard-normal draws (higher z, dearer item)."""
    p = CAT_MEDIAN[cats] * np.exp(CAT_SIGMA[cats] * z)
    p = np.clip(p, 39.0, 350_000.0)
    p = np.where(p >= 100, np.ceil(p / 10) * 10 - 1, np.round(p))  # shelf prices: 1 399, 2 990 ...
    gift = cats == GIFT
    if gift.any():
        nearest = np.abs(np.log(p[gift])[:, None] - np.log(GIFT_DENOMINATIONS)[None, :]).argmin(axis=1)
        p[gift] = GIFT_DENOMINATIONS[nearest]
    prices: FloatArray = p.astype(np.float64)
    return prices


def item_line(sku: str, cat: int, quantity: int, unit_price: float) -> Item:
    return {"sku": sku, "category": CAT_NAMES[cat], "quantity": quantity, "unit_price": unit_price}


def to_currency(rub: FloatArray, cny: NDArray[np.bool_]) -> FloatArray:
    return np.where(cny, np.round(rub / RUB_PER_UNIT["CNY"], 2), rub)


@dataclass
class Columns:
    """Orders before they become payloads: indices into the entity tables, one list per field."""

    ts: list[int] = field(default_factory=list)
    buyer: list[int] = field(default_factory=list)
    phone: list[str | None] = field(default_factory=list)
    seller: list[int] = field(default_factory=list)
    cny: list[bool] = field(default_factory=list)
    ip: list[str] = field(default_factory=list)
    ip_country: list[str] = field(default_factory=list)
    device: list[str | None] = field(default_factory=list)
    channel: list[str] = field(default_factory=list)
    method: list[str] = field(default_factory=list)
    card: list[int] = field(default_factory=list)  # -1: no card on the order
    address: list[int] = field(default_factory=list)  # -1: nothing to ship (gift cards)
    items: list[list[Item]] = field(default_factory=list)
    amount: list[float] = field(default_factory=list)  # in the order's currency
    pattern: list[int] = field(default_factory=list)
    label_ts: list[int] = field(default_factory=list)  # -1: never labelled

    def extend(self, other: Columns) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))

    def __len__(self) -> int:
        return len(self.ts)

"""A deterministic marketplace history: legit traffic, six fraud patterns and delayed labels.

The fraud model is trained and evaluated on this, and the demos replay it, so it has to carry the
signals real fraud carries (bursts on one card, many cards on one device, drops shared by strangers,
an old account suddenly on a new device and address, a small seller with a sudden crowd of new
buyers) and the noise that makes rules alone fall short (legit buyers with Kazakh or Armenian
cards, VPNs, trips abroad, pickup points shared by dozens of neighbours, new accounts every day,
and friendly fraud that looks like any other repeat purchase).

Everything is drawn from one `numpy.random.Generator` seeded from the config, in a fixed order,
so a seed always gives the same history. Legit traffic is generated column-wise with NumPy; the
fraud episodes (a few percent of orders) are generated one by one.
"""

from __future__ import annotations

import gc
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dozor.domain.contracts import RUB_PER_UNIT
from dozor.domain.geography import REGIONS

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
Item = dict[str, Any]  # an order line as the contract has it: sku, category, quantity, unit_price

MINUTE = 60
HOUR = 3_600
DAY = 86_400

LEGIT = "legit"
FRAUD_PATTERNS = (
    "stolen_card_burst",
    "card_testing",
    "account_takeover",
    "reshipping",
    "colluding_seller",
    "friendly_fraud",
)
PATTERNS = (LEGIT, *FRAUD_PATTERNS)

# Share of fraudulent orders per pattern (normalised, so only the ratios matter).
DEFAULT_PATTERN_MIX: Mapping[str, float] = MappingProxyType(
    {
        "stolen_card_burst": 0.25,
        "card_testing": 0.15,
        "account_takeover": 0.15,
        "reshipping": 0.17,
        "colluding_seller": 0.10,
        "friendly_fraud": 0.18,
    }
)

CAPITAL_REGIONS = ("RU-MOW", "RU-SPE", "RU-MOS", "RU-LEN")


@dataclass(frozen=True)
class SimulatedOrder:
    order: dict[str, Any]  # the contract payload: `Order.model_validate(order)` accepts it
    is_fraud: bool
    pattern: str  # one of PATTERNS
    label_reported_at: datetime | None  # when the chargeback / confirmation arrives; None: never labelled


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. `orders_per_day` is an ordinary day's volume; weekdays and 11.11 move around it."""

    days: int = 30
    seed: int = 7
    start: datetime = datetime(2026, 10, 1, tzinfo=UTC)
    orders_per_day: int = 3000
    fraud_rate: float = 0.02  # share of fraudulent orders overall
    pattern_mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_PATTERN_MIX), hash=False)
    capital_share: float = 0.55  # legit buyers living in Moscow / St Petersburg and their oblasts
    legit_label_rate: float = 0.3  # legit orders that get a delivered-and-reviewed confirmation
    peak_multiplier: float = 3.0  # 11.11 volume over an ordinary day

    def __post_init__(self) -> None:
        if self.days < 1 or self.orders_per_day < 1:
            raise ValueError("days and orders_per_day must be at least 1")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if not 0.0 <= self.fraud_rate < 1.0:
            raise ValueError("fraud_rate must be in [0, 1)")
        if not 0.0 <= self.capital_share <= 1.0 or not 0.0 <= self.legit_label_rate <= 1.0:
            raise ValueError("capital_share and legit_label_rate must be in [0, 1]")
        unknown = sorted(set(self.pattern_mix) - set(FRAUD_PATTERNS))
        if unknown:
            raise ValueError(f"unknown fraud patterns in pattern_mix: {unknown}")
        if any(w < 0 for w in self.pattern_mix.values()) or sum(self.pattern_mix.values()) <= 0:
            raise ValueError("pattern_mix weights must be non-negative with a positive sum")


def simulate(config: SimulationConfig) -> list[SimulatedOrder]:
    """The marketplace history for `config`, sorted by `created_at`; the same config gives the same list."""
    # Millions of small dicts and no reference cycles: the cyclic collector would only rescan them
    # (a third of the run time at a million orders).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _World(config).run()
    finally:
        if collecting:
            gc.enable()


def write_history(
    orders: Sequence[SimulatedOrder], out_dir: str | Path, fmt: str = "jsonl"
) -> tuple[Path, Path]:
    """Write `orders.jsonl` (one contract payload a line) and `labels.jsonl` (in arrival order).

    A label line is `{"order_id", "label": "fraud"|"legit", "reported_at", "pattern"}`; orders that
    were never labelled have no line. Returns the two paths.
    """
    if fmt != "jsonl":
        raise ValueError(f"unsupported format {fmt!r}: only 'jsonl' is written")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    orders_path, labels_path = out / "orders.jsonl", out / "labels.jsonl"
    with orders_path.open("w", encoding="utf-8") as f:
        for o in orders:
            f.write(json.dumps(o.order, ensure_ascii=False, separators=(",", ":")))
            f.write("\n")
    labelled = sorted(
        (o.label_reported_at, o.order["order_id"], o) for o in orders if o.label_reported_at is not None
    )
    with labels_path.open("w", encoding="utf-8") as f:
        for reported_at, order_id, o in labelled:
            row = {
                "order_id": order_id,
                "label": "fraud" if o.is_fraud else "legit",
                "reported_at": _iso(reported_at),
                "pattern": o.pattern,
            }
            f.write(json.dumps(row, separators=(",", ":")))
            f.write("\n")
    return orders_path, labels_path


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Reference tables -------------------------------------------------------------------------

# name, median unit price (RUB), log-sd of the price, share of sellers, max quantity per line
_CATEGORIES: tuple[tuple[str, float, float, float, int], ...] = (
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
_CAT_NAMES = tuple(c[0] for c in _CATEGORIES)
_CAT = {name: i for i, name in enumerate(_CAT_NAMES)}
_CAT_MEDIAN = np.array([c[1] for c in _CATEGORIES])
_CAT_SIGMA = np.array([c[2] for c in _CATEGORIES])
_CAT_SELLER_SHARE = np.array([c[3] for c in _CATEGORIES]) / sum(c[3] for c in _CATEGORIES)
_CAT_MAX_QTY = np.array([c[4] for c in _CATEGORIES])
_GIFT = _CAT["gift_cards"]
_GIFT_DENOMINATIONS = np.array([500.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0, 10000.0])

# fmt: off
# Orders per local hour (buyer's time zone), and fraud per Moscow hour: flatter, leaning to night.
_LEGIT_HOURLY = np.array([
    1.1, 0.6, 0.35, 0.2, 0.15, 0.2, 0.45, 0.9, 1.4, 1.8, 2.1, 2.3,
    2.5, 2.5, 2.4, 2.4, 2.5, 2.7, 3.0, 3.4, 3.7, 3.6, 3.0, 2.0,
])
_FRAUD_HOURLY_MSK = np.array([
    2.4, 2.6, 2.6, 2.4, 2.0, 1.6, 1.4, 1.4, 1.6, 1.8, 2.0, 2.2,
    2.2, 2.2, 2.1, 2.1, 2.1, 2.2, 2.3, 2.4, 2.5, 2.5, 2.5, 2.4,
])
_WEEKLY = (1.06, 1.03, 1.00, 0.98, 0.93, 0.93, 1.07)  # Monday..Sunday; Sunday evening is busiest
_MSK_OFFSET = 3

# Plausible issuer BINs per card country (made up, not a real BIN table).
_BINS: dict[str, tuple[str, ...]] = {
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
_LEGIT_CARD_COUNTRIES = (
    ("RU", 94.5), ("KZ", 2.0), ("AM", 1.0), ("KG", 0.8), ("BY", 0.7), ("UZ", 0.4), ("CN", 0.3), ("TR", 0.2),
    ("AE", 0.1),
)
_STOLEN_FOREIGN_CARD_COUNTRIES = (
    ("US", 30.0), ("GB", 12.0), ("DE", 12.0), ("FR", 8.0), ("PL", 8.0), ("TR", 8.0), ("KZ", 12.0),
    ("AE", 5.0), ("CN", 5.0),
)

# /16 prefixes by country and kind (plausible, not an allocation table).
_RU_HOME = (
    "95.24", "178.176", "188.162", "46.242", "77.37", "85.140", "91.76", "109.252", "217.66", "37.110",
    "92.100", "94.25", "79.165",
)
_RU_MOBILE = ("31.173", "176.59", "85.26", "213.87", "188.170", "37.144")
_RU_HOSTING = ("45.90", "185.244", "194.87", "5.188", "91.240")
_ABROAD: dict[str, tuple[str, ...]] = {  # where travellers shop from
    "TR": ("85.105", "78.180"), "TH": ("171.96", "49.228"), "AE": ("94.200", "86.98"),
    "EG": ("41.33", "197.34"), "GE": ("31.146", "188.129"), "AM": ("37.252", "46.70"),
    "KZ": ("2.132", "95.56"), "CN": ("36.110", "112.97"), "VN": ("113.160", "14.226"),
    "UZ": ("84.54", "213.230"),
}
_HOSTING: dict[str, tuple[str, ...]] = {  # VPN exits and proxies
    "NL": ("185.107", "89.38"), "DE": ("89.246", "138.201"), "US": ("104.28", "45.79"),
    "FI": ("95.216", "65.21"), "LT": ("185.25", "88.119"), "GB": ("51.89", "185.159"),
}

_MALE_FIRST = (
    "ivan", "dmitry", "sergey", "alexey", "andrey", "maxim", "nikita", "artem", "mikhail", "pavel", "egor",
)
_FEMALE_FIRST = (
    "anna", "maria", "elena", "olga", "natalia", "ekaterina", "tatiana", "irina", "yulia", "daria",
)
_LAST = (
    "ivanov", "smirnov", "kuznetsov", "popov", "vasiliev", "petrov", "sokolov", "mikhailov", "novikov",
    "fedorov", "morozov", "volkov", "alekseev", "lebedev", "semenov", "egorov", "pavlov", "kozlov",
)
_EMAIL_DOMAINS = (
    "mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "list.ru", "rambler.ru", "icloud.com",
)
_EMAIL_DOMAIN_P = np.array([30, 28, 20, 5, 4, 3, 4, 6], dtype=float) / 100
# Some are on the scoring blocklist and some are not: blocklists are never complete.
_DISPOSABLE_DOMAINS = (
    "mailinator.com", "yopmail.com", "10minutemail.com", "guerrillamail.com", "sharklasers.com",
    "dropmail.me", "tempmail.plus",
)
_FRAUD_EMAIL_DOMAINS = ("gmail.com", "mail.ru", "yandex.ru", "outlook.com", "proton.me")
# "улица Садовая", but "проспект Мира": the adjective names only go with улица.
_STREETS = (
    "Советская", "Садовая", "Молодёжная", "Центральная", "Школьная", "Лесная", "Набережная", "Октябрьская",
    "Комсомольская", "Первомайская", "Московская", "Заводская", "Юбилейная", "Солнечная", "Северная",
)
_STREETS_ANY_KIND = ("Ленина", "Мира", "Гагарина", "Пушкина", "Кирова", "Победы", "Строителей", "Чехова")
_STREET_KINDS = ("ул.", "пр-т", "пер.", "б-р", "ш.")

# fmt: on
_PAYMENT_METHODS = ("card", "sbp", "wallet", "installments", "cod")
_DELIVERY_DAYS = (9.0, 12.0, 17.0, 24.0)  # China to the door, by remoteness tier


# --- Small helpers ----------------------------------------------------------------------------


def _mix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64's finaliser: a bijection on 64-bit integers, so distinct inputs give distinct ids."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class _Ids:
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


def _weighted(rng: np.random.Generator, weights: FloatArray, size: int) -> IntArray:
    cw = np.cumsum(weights)
    idx: IntArray = np.minimum(np.searchsorted(cw, rng.random(size) * cw[-1], side="right"), len(weights) - 1)
    return idx.astype(np.int64)


def _table_p(table: Sequence[tuple[str, float]]) -> tuple[list[str], FloatArray]:
    names = [k for k, _ in table]
    w = np.array([v for _, v in table], dtype=float)
    return names, w / w.sum()


def _rfc3339(ts: IntArray) -> list[str]:
    return [s + "Z" for s in np.datetime_as_string(ts.astype("datetime64[s]"), unit="s").tolist()]


def _rub_prices(rng: np.random.Generator, cats: IntArray, z: FloatArray) -> FloatArray:
    """Unit prices in roubles for category indices and standard-normal draws (higher z, dearer item)."""
    p = _CAT_MEDIAN[cats] * np.exp(_CAT_SIGMA[cats] * z)
    p = np.clip(p, 39.0, 350_000.0)
    p = np.where(p >= 100, np.ceil(p / 10) * 10 - 1, np.round(p))  # shelf prices: 1 399, 2 990 ...
    gift = cats == _GIFT
    if gift.any():
        nearest = np.abs(np.log(p[gift])[:, None] - np.log(_GIFT_DENOMINATIONS)[None, :]).argmin(axis=1)
        p[gift] = _GIFT_DENOMINATIONS[nearest]
    prices: FloatArray = p.astype(np.float64)
    return prices


def _line(sku: str, cat: int, quantity: int, unit_price: float) -> Item:
    return {"sku": sku, "category": _CAT_NAMES[cat], "quantity": quantity, "unit_price": unit_price}


def _to_currency(rub: FloatArray, cny: NDArray[np.bool_]) -> FloatArray:
    return np.where(cny, np.round(rub / RUB_PER_UNIT["CNY"], 2), rub)


def _allocate(total: int, mix: Mapping[str, float]) -> dict[str, int]:
    """Split `total` over the fraud patterns by `mix` (largest remainder); each positive share gets one."""
    weights = np.array([max(0.0, float(mix.get(p, 0.0))) for p in FRAUD_PATTERNS])
    share = weights / weights.sum() * total
    counts = np.floor(share).astype(int)
    for i in np.argsort(-(share - counts), kind="stable")[: total - int(counts.sum())]:
        counts[i] += 1
    if total >= int((weights > 0).sum()):
        for i in np.flatnonzero((weights > 0) & (counts == 0)):
            counts[i] += 1
            counts[int(np.argmax(counts))] -= 1
    return {p: int(c) for p, c in zip(FRAUD_PATTERNS, counts, strict=True)}


@dataclass
class _Columns:
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

    def extend(self, other: _Columns) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))

    def __len__(self) -> int:
        return len(self.ts)


# --- The world --------------------------------------------------------------------------------


class _World:
    """Sellers, buyers, cards, devices and addresses, and the orders they make."""

    def __init__(self, cfg: SimulationConfig) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.ids = _Ids(self.rng)
        self.t0 = int(cfg.start.timestamp())
        self.t1 = self.t0 + cfg.days * DAY

        regions = list(REGIONS.values())
        self.regions = regions
        self.reg_offset = np.array([r.utc_offset for r in regions], dtype=np.int64)
        self.reg_tier = np.array([r.tier for r in regions], dtype=np.int64)
        pop = np.array([r.population for r in regions])
        capital = np.array([r.code in CAPITAL_REGIONS for r in regions])
        self.pop_p = pop / pop.sum()
        self.legit_region_p = np.where(
            capital,
            cfg.capital_share * pop / pop[capital].sum(),
            (1 - cfg.capital_share) * pop / pop[~capital].sum(),
        )
        remote_bias = np.array([1.0, 1.0, 1.8, 3.0])[self.reg_tier]
        self.remote_p = self.pop_p * remote_bias / (self.pop_p * remote_bias).sum()
        self.capital_idx = np.flatnonzero(capital)

        # Entity tables (lists, since fraud episodes append to them one by one).
        self.buyer_id: list[str] = []
        self.buyer_email: list[str | None] = []
        self.buyer_phone: list[str | None] = []
        self.buyer_created: list[int] = []
        self.card_fp: list[str] = []
        self.card_bin: list[str] = []
        self.card_country: list[str] = []
        self.addr_region: list[int] = []
        self.addr_city: list[str] = []
        self.addr_postal: list[str] = []
        self.addr_line: list[str] = []
        self.emails_seen: set[str] = set()
        self.email_uses: dict[str, int] = {}  # per base address, how many have been handed out

        self.day_volume = self._day_volumes()

    # ---- orchestration

    def run(self) -> list[SimulatedOrder]:
        cfg = self.cfg
        legit_per_day = np.round(self.day_volume * (1 - cfg.fraud_rate)).astype(np.int64)
        n_legit = int(legit_per_day.sum())
        n_fraud = round(n_legit * cfg.fraud_rate / (1 - cfg.fraud_rate))
        budgets = _allocate(n_fraud, cfg.pattern_mix) if n_fraud else dict.fromkeys(FRAUD_PATTERNS, 0)

        self._build_sellers()
        self._build_buyers()
        cols = self._legit_orders(legit_per_day)
        self.drops = self._drop_addresses(budgets["reshipping"])
        fraud = _Columns()
        self.fraud = fraud
        self._reshipping(budgets["reshipping"])
        self._stolen_card_burst(budgets["stolen_card_burst"])
        self._card_testing(budgets["card_testing"])
        self._account_takeover(budgets["account_takeover"])
        self._colluding_seller(budgets["colluding_seller"])
        self._friendly_fraud(budgets["friendly_fraud"])
        cols.extend(fraud)
        return self._assemble(cols)

    def _day_volumes(self) -> FloatArray:
        cfg = self.cfg
        first = cfg.start.astimezone(UTC).date()
        vol = np.empty(cfg.days)
        for d in range(cfg.days):
            day = first + timedelta(days=d)
            peak = {11: cfg.peak_multiplier, 10: 1.25, 12: 1.5}.get(day.day, 1.0) if day.month == 11 else 1.0
            vol[d] = cfg.orders_per_day * _WEEKLY[day.weekday()] * peak
        return vol * np.exp(self.rng.normal(0.0, 0.04, cfg.days))

    # ---- entities

    def _build_sellers(self) -> None:
        rng = self.rng
        n = int(np.clip(self.cfg.orders_per_day / 10, 150, 800))
        self.seller_weight = np.minimum(rng.pareto(1.1, n) + 1.0, 400.0)
        primary = _weighted(rng, _CAT_SELLER_SHARE, n)
        primary[rng.permutation(n)[: len(_CATEGORIES)]] = np.arange(len(_CATEGORIES))  # every category sold
        self.seller_primary = primary
        self.seller_secondary = _weighted(rng, _CAT_SELLER_SHARE, n)
        self.seller_skus = np.clip(20 + self.seller_weight * 15, 20, 3000).astype(np.int64)
        self.seller_id = self.ids.hex("seller", "slr_", n)
        # SKU prefix: six hex digits of the seller id, or all sixteen where six are not unique.
        codes = [s[4:10].upper() for s in self.seller_id]
        taken = Counter(codes)
        self.seller_code = [
            c if taken[c] == 1 else s[4:].upper() for c, s in zip(codes, self.seller_id, strict=True)
        ]
        self.cat_sellers: list[IntArray] = [np.flatnonzero(primary == c) for c in range(len(_CATEGORIES))]

    def _build_buyers(self) -> None:
        """The legit population: long-standing buyers plus accounts opened during the window."""
        rng, cfg = self.rng, self.cfg
        n_old = max(400, cfg.orders_per_day * 12)
        age = np.clip(rng.exponential(2.0 * 365 * DAY, n_old), 7 * DAY, 9 * 365 * DAY)
        created_old = self.t0 - age.astype(np.int64)
        new_per_day = rng.poisson(0.03 * self.day_volume)
        day = np.repeat(np.arange(cfg.days), new_per_day)
        hour = _weighted(rng, _LEGIT_HOURLY, len(day))
        created_new = self.t0 + day * DAY + (hour - _MSK_OFFSET) * HOUR + rng.integers(0, HOUR, len(day))
        created_new = np.minimum(self.t0 + (created_new - self.t0) % (self.t1 - self.t0), self.t1 - 2 * HOUR)
        created = np.sort(np.concatenate([created_old, created_new]))
        n = len(created)
        self.n_legit_buyers = n
        self.created = created
        self.is_new = created >= self.t0

        region = _weighted(rng, self.legit_region_p, n)
        self.region = region
        self.weight = rng.lognormal(0.0, 1.0, n)
        self.api_buyer = rng.random(n) < 0.005  # resellers ordering through the partner API
        self.weight[self.api_buyer] *= 5
        self.cny_buyer = rng.random(n) < 0.08

        # Addresses: a home, or a pickup point shared with neighbours; some have a second address.
        pickup = rng.random(n) < 0.25
        home = np.empty(n, dtype=np.int64)
        for r in range(len(self.regions)):
            members = np.flatnonzero(pickup & (region == r))
            if len(members):
                points = self._new_addresses(np.full(-(-len(members) // 30), r), pickup=True)
                home[members] = points[rng.integers(0, len(points), len(members))]
        own = np.flatnonzero(~pickup)
        home[own] = self._new_addresses(region[own])
        second = np.full(n, -1, dtype=np.int64)
        has_second = np.flatnonzero(rng.random(n) < 0.15)
        second_region = np.where(
            rng.random(len(has_second)) < 0.7, region[has_second], _weighted(rng, self.pop_p, len(has_second))
        )
        second[has_second] = self._new_addresses(second_region)

        # Devices: one or two; app devices and web browsers.
        n_dev = 1 + (rng.random(n) < 0.35)
        app0 = rng.random(n) < 0.62
        app1 = rng.random(n) < 0.5
        dev0 = self.ids.devices(app0.tolist())
        dev1: list[str | None] = [None] * n
        two = np.flatnonzero(n_dev == 2)
        for i, d in zip(two.tolist(), self.ids.devices(app1[two].tolist()), strict=True):
            dev1[i] = d

        # Households: partners share the home address and one device.
        old = np.flatnonzero(~self.is_new)
        members = rng.choice(old, size=len(old) // 25, replace=False) if len(old) >= 50 else old[:0]
        partners = rng.choice(old, size=len(members))
        keep = members != partners
        members, partners = members[keep], partners[keep]
        region[members] = region[partners]
        home[members] = home[partners]
        for m, p in zip(members.tolist(), partners.tolist(), strict=True):
            dev1[m] = dev0[p]
            app1[m] = app0[p]
        n_dev[members] = 2

        self.home, self.second = home, second
        self.dev0, self.dev1, self.app0, self.app1, self.n_dev = dev0, dev1, app0, app1, n_dev

        # Cards: none, one or two; mostly Russian.
        n_cards = _weighted(rng, np.array([0.10, 0.55, 0.35]), n)
        names, p = _table_p(_LEGIT_CARD_COUNTRIES)
        card0 = np.full(n, -1, dtype=np.int64)
        card1 = np.full(n, -1, dtype=np.int64)
        with_one = np.flatnonzero(n_cards >= 1)
        card0[with_one] = self._new_cards([names[i] for i in _weighted(rng, p, len(with_one))])
        with_two = np.flatnonzero(n_cards == 2)
        card1[with_two] = self._new_cards([names[i] for i in _weighted(rng, p, len(with_two))])
        self.card0, self.card1 = card0, card1
        method = np.where(
            n_cards > 0,
            _weighted(rng, np.array([0.70, 0.14, 0.07, 0.06, 0.03]), n),
            1 + _weighted(rng, np.array([0.60, 0.25, 0.0, 0.15]), n),
        )
        self.method_pref = method

        # Contacts, home internet, trips abroad.
        emails = self._legit_emails(n)
        self.buyer_email.extend(
            e if has else None for e, has in zip(emails, rng.random(n) < 0.96, strict=True)
        )
        self.buyer_id.extend(self.ids.hex("buyer", "u_", n))
        phones = self._phones(n)
        self.buyer_phone.extend(
            p if keep_phone else None for p, keep_phone in zip(phones, rng.random(n) < 0.75, strict=True)
        )
        self.buyer_created.extend(created.tolist())
        self.isp = rng.integers(0, len(_RU_HOME), n)
        self.home_ip = [
            f"{_RU_HOME[a]}.{b}.{c}"
            for a, b, c in zip(
                self.isp.tolist(),
                rng.integers(0, 256, n).tolist(),
                rng.integers(1, 255, n).tolist(),
                strict=True,
            )
        ]
        traveller = rng.random(n) < 0.05
        self.trip_start = np.where(traveller, rng.integers(self.t0 - 10 * DAY, self.t1, n), 0)
        self.trip_end = np.where(traveller, self.trip_start + rng.integers(5 * DAY, 16 * DAY, n), 0)
        self.trip_country = rng.integers(0, len(_ABROAD), n)

    def _new_address(self, region: int) -> int:
        return int(self._new_addresses(np.array([region]))[0])

    def _new_addresses(self, regions: IntArray, *, pickup: bool = False) -> IntArray:
        rng = self.rng
        n = len(regions)
        first = len(self.addr_line)
        u = rng.random((n, 6)).tolist()
        for r, (a, b, c, d, e, f) in zip(regions.tolist(), u, strict=True):
            reg = self.regions[r]
            city = reg.towns[int(b * len(reg.towns))] if reg.towns and a < 0.45 else reg.city
            prefix = reg.postal_prefixes[int(c * len(reg.postal_prefixes))]
            if d < 0.6:
                street = f"ул. {_STREETS[int(e * len(_STREETS))]}"
            else:
                kind = _STREET_KINDS[int(d * 1e3) % len(_STREET_KINDS)]
                street = f"{kind} {_STREETS_ANY_KIND[int(e * len(_STREETS_ANY_KIND))]}"
            house = 1 + int(f * f * 120)
            if pickup:
                line = f"пункт выдачи, {street}, д. {house}"
            else:
                building = f"{house}к{1 + int(a * 1000) % 4}" if b < 0.2 else str(house)
                line = f"{street}, д. {building}, кв. {1 + int(c * 997) % 240}"
            self.addr_region.append(r)
            self.addr_city.append(city)
            self.addr_postal.append(f"{prefix}{int(e * 1e6) % 1000:03d}")
            self.addr_line.append(line)
        return np.arange(first, first + n, dtype=np.int64)

    def _new_cards(self, countries: Sequence[str], bins: Sequence[str] | None = None) -> IntArray:
        first = len(self.card_fp)
        picks = self.rng.random(len(countries)).tolist()
        self.card_fp.extend(self.ids.hex("card", "fp_", len(countries)))
        for i, (country, u) in enumerate(zip(countries, picks, strict=True)):
            options = _BINS[country] if bins is None else (bins[i],)
            self.card_bin.append(options[int(u * len(options))])
            self.card_country.append(country)
        return np.arange(first, first + len(countries), dtype=np.int64)

    def _new_card(self, country: str, bin_: str | None = None) -> int:
        return int(self._new_cards([country], None if bin_ is None else [bin_])[0])

    def _phones(self, n: int) -> list[str]:
        return [f"+79{v % 1_000_000_000:09d}" for v in self.ids.raw("phone", n)]

    def _legit_emails(self, n: int) -> list[str]:
        """Addresses real people have: names, birth years, phone numbers, nicknames; a few throwaways."""
        rng = self.rng
        female = (rng.random(n) < 0.55).tolist()
        a, b, c, d = rng.random((4, n)).tolist()
        domains = [_EMAIL_DOMAINS[i] for i in _weighted(rng, _EMAIL_DOMAIN_P, n).tolist()]
        throwaway = (rng.random(n) < 0.005).tolist()
        out = []
        for i in range(n):
            ai, bi, ci, di = a[i], b[i], c[i], d[i]
            names = _FEMALE_FIRST if female[i] else _MALE_FIRST
            first = names[int(ai * len(names))]
            last = _LAST[int(bi * len(_LAST))] + ("a" if female[i] else "")
            sep = "." if ci < 0.5 else "_"
            if di < 0.32:
                local = f"{first}{sep}{last}"
            elif di < 0.62:
                local = f"{first}{sep}{last}{1970 + int(ci * 1000) % 36}"
            elif di < 0.86:
                local = f"{first[0]}{last}{int(bi * 1e6) % 1000}"
            elif di < 0.93:  # the phone number as the mailbox name, common on mail.ru
                local = f"79{int(ci * 1e12) % 1_000_000_000:09d}"
            else:  # a nickname
                local = f"{last[:4]}{first[:3]}{int(ai * 1e7) % 10_000}"
            domain = _DISPOSABLE_DOMAINS[int(ci * len(_DISPOSABLE_DOMAINS))] if throwaway[i] else domains[i]
            out.append(self._unique_email(local, domain))
        return out

    def _unique_email(self, local: str, domain: str) -> str:
        """`local@domain`, or `local2@domain`, `local3@domain` ... when it is taken (as mail services do)."""
        base = f"{local}@{domain}"
        k = self.email_uses.get(base, 0)
        email = base if k == 0 else f"{local}{k + 1}@{domain}"
        while email in self.emails_seen:
            k += 1
            email = f"{local}{k + 1}@{domain}"
        self.email_uses[base] = k + 1
        self.emails_seen.add(email)
        return email

    # ---- legit traffic

    def _legit_orders(self, per_day: IntArray) -> _Columns:
        rng, cfg = self.rng, self.cfg
        created = self.created
        # Most new accounts are opened at checkout: their first order follows within minutes.
        new = np.flatnonzero(self.is_new)
        first_buyers = new[rng.random(len(new)) < 0.7]
        first_ts = created[first_buyers] + (
            MINUTE + rng.lognormal(math.log(12 * MINUTE), 1.0, len(first_buyers))
        )
        first_ts = np.minimum(first_ts.astype(np.int64), self.t1 - 1)
        first_day = np.clip((first_ts - self.t0) // DAY, 0, cfg.days - 1)
        sampled_per_day = np.maximum(per_day - np.bincount(first_day, minlength=cfg.days), 0)

        day = np.repeat(np.arange(cfg.days, dtype=np.int64), sampled_per_day)
        n_s = len(day)
        # Buyers who existed by the end of the order's day, by activity.
        cw = np.cumsum(self.weight)
        eligible = np.searchsorted(created, self.t0 + (np.arange(cfg.days) + 1) * DAY, side="right")
        bound = eligible[day]
        buyer = np.searchsorted(cw, rng.random(n_s) * cw[bound - 1], side="right")
        buyer = np.minimum(buyer, bound - 1)
        local_second = _weighted(rng, _LEGIT_HOURLY, n_s) * HOUR + rng.integers(0, HOUR, n_s)
        ts = self.t0 + day * DAY + local_second - self.reg_offset[self.region[buyer]] * HOUR
        span = self.t1 - self.t0
        ts = self.t0 + (ts - self.t0) % span  # keeps the local hour at the window's edges
        early = ts < created[buyer] + MINUTE
        ts[early] = (
            created[buyer[early]] + MINUTE + rng.exponential(2 * HOUR, int(early.sum())).astype(np.int64)
        )
        ts = np.minimum(ts, self.t1 - 1)

        buyer = np.concatenate([first_buyers, buyer])
        ts = np.concatenate([first_ts, ts])
        n = len(buyer)
        # A cart with several sellers' items becomes one order per seller, seconds apart: the same
        # buyer, device, card and address several times in a minute is ordinary here.
        rows = np.arange(len(first_buyers), n)
        in_cart = rng.random(len(rows)) < 0.08
        heads = rows[~in_cart]
        siblings = rows[in_cart] if len(heads) else rows[:0]
        parent = heads[rng.integers(0, max(len(heads), 1), len(siblings))]
        buyer[siblings] = buyer[parent]
        ts[siblings] = np.minimum(ts[parent] + rng.integers(1, 40, len(siblings)), self.t1 - 1)
        u = rng.random((n, 10))

        # Device and channel; now and then a new phone or a browser that hides its fingerprint.
        use_second = (self.n_dev[buyer] == 2) & (u[:, 0] < 0.25)
        app = np.where(use_second, self.app1[buyer], self.app0[buyer])
        fresh_device = u[:, 1] < 0.025
        fresh_ids = iter(self.ids.devices(app[fresh_device].tolist()))
        api = self.api_buyer[buyer]
        hidden = (u[:, 2] < 0.015) | (api & (u[:, 2] > 0.5))  # API calls often carry no device at all
        dev0, dev1 = self.dev0, self.dev1
        device: list[str | None] = []
        for b, second, fresh, hide in zip(
            buyer.tolist(), use_second.tolist(), fresh_device.tolist(), hidden.tolist(), strict=True
        ):
            d = next(fresh_ids) if fresh else (dev1[b] if second else dev0[b])
            device.append(None if hide else d)
        channel = np.where(api, "api", np.where(app, "app", "web")).tolist()

        # Payment: the usual method, sometimes another; a new card now and then.
        pref = self.method_pref[buyer]
        other = rng.integers(0, len(_PAYMENT_METHODS), n)
        has_card = self.card0[buyer] >= 0
        method_idx = np.where(u[:, 3] < 0.12, other, pref)
        method_idx = np.where(~has_card & (method_idx == 0) | ~has_card & (method_idx == 3), 1, method_idx)
        method = np.array(_PAYMENT_METHODS)[method_idx]
        on_card = (method_idx == 0) | (method_idx == 3)
        card = np.where((self.card1[buyer] >= 0) & (u[:, 4] < 0.3), self.card1[buyer], self.card0[buyer])
        new_card = on_card & (u[:, 5] < 0.015)
        names, p = _table_p(_LEGIT_CARD_COUNTRIES)
        card[new_card] = self._new_cards([names[i] for i in _weighted(rng, p, int(new_card.sum()))])
        card = np.where(on_card, card, -1)

        # IP: home broadband, the mobile network, a VPN, or abroad on a trip.
        ip, ip_country = self._legit_ips(buyer, ts, app, u[:, 6])

        # Shipping: home, the second address, or a gift to someone elsewhere.
        address = np.where((self.second[buyer] >= 0) & (u[:, 7] < 0.12), self.second[buyer], self.home[buyer])
        gift = np.flatnonzero(u[:, 8] < 0.03)
        address[gift] = self._new_addresses(_weighted(rng, self.pop_p, len(gift)))

        seller = _weighted(rng, self.seller_weight, n)
        cny = (self.cny_buyer[buyer] & (u[:, 9] < 0.8)) | (u[:, 9] > 0.98)
        cny[siblings], method[siblings], card[siblings] = cny[parent], method[parent], card[parent]
        items, amounts, digital = self._legit_items(seller, cny)
        address[digital] = -1
        shared = np.where(address[parent] >= 0, address[parent], self.home[buyer[siblings]])
        address[siblings] = np.where(digital[siblings], -1, shared)
        for sib, head in zip(siblings.tolist(), parent.tolist(), strict=True):
            device[sib], channel[sib], ip[sib], ip_country[sib] = (
                device[head],
                channel[head],
                ip[head],
                ip_country[head],
            )

        labelled = rng.random(n) < cfg.legit_label_rate
        tier = np.where(address >= 0, self.reg_tier[np.array(self.addr_region)[np.maximum(address, 0)]], -1)
        delivery = np.where(
            tier >= 0, np.array(_DELIVERY_DAYS)[np.maximum(tier, 0)] * rng.lognormal(0.0, 0.2, n), 0.5
        )
        review = rng.lognormal(math.log(3.0), 0.5, n)
        label_ts = np.where(labelled, ts + ((delivery + review) * DAY).astype(np.int64), -1)

        return _Columns(
            ts=ts.tolist(),
            buyer=buyer.tolist(),
            phone=[self.buyer_phone[b] for b in buyer.tolist()],
            seller=seller.tolist(),
            cny=cny.tolist(),
            ip=ip,
            ip_country=ip_country,
            device=device,
            channel=channel,
            method=method.tolist(),
            card=card.tolist(),
            address=address.tolist(),
            items=items,
            amount=amounts,
            pattern=[0] * n,
            label_ts=label_ts.tolist(),
        )

    def _legit_ips(
        self, buyer: IntArray, ts: IntArray, app: NDArray[np.bool_], u: FloatArray
    ) -> tuple[list[str], list[str]]:
        rng = self.rng
        n = len(buyer)
        on_trip = (ts >= self.trip_start[buyer]) & (ts < self.trip_end[buyer])
        # 0 home line, 1 mobile network, 2 VPN exit, 3 abroad on a trip, 4 another address on the same ISP
        kind = np.select([on_trip, u < 0.03, app & (u < 0.45), u < 0.8], [3, 2, 1, 0], default=4)
        hosting, abroad = list(_HOSTING.items()), list(_ABROAD.items())
        vpn = rng.integers(0, len(hosting), n).tolist()
        pick = rng.random(n).tolist()
        o3 = rng.integers(0, 256, n).tolist()
        o4 = rng.integers(1, 255, n).tolist()
        trip, isp, home_ip = self.trip_country[buyer].tolist(), self.isp[buyer].tolist(), self.home_ip
        ips: list[str] = []
        countries: list[str] = []
        prefixes: tuple[str, ...]
        for i, (b, k) in enumerate(zip(buyer.tolist(), kind.tolist(), strict=True)):
            if k == 0:
                ips.append(home_ip[b])
                countries.append("RU")
                continue
            if k == 1:
                country, prefixes = "RU", _RU_MOBILE
            elif k == 2:
                country, prefixes = hosting[vpn[i]]
            elif k == 3:
                country, prefixes = abroad[trip[i]]
            else:
                country, prefixes = "RU", (_RU_HOME[isp[i]],)
            ips.append(f"{prefixes[int(pick[i] * len(prefixes))]}.{o3[i]}.{o4[i]}")
            countries.append(country)
        return ips, countries

    def _legit_items(
        self, seller: IntArray, cny: NDArray[np.bool_]
    ) -> tuple[list[list[Item]], list[float], NDArray[np.bool_]]:
        """Catalogue lines, order amounts, and which orders are gift cards only (nothing to ship)."""
        rng = self.rng
        n = len(seller)
        lines = 1 + _weighted(rng, np.array([0.72, 0.19, 0.09]), n)
        cats = np.where(
            rng.random((n, 3)) < 0.75,
            self.seller_primary[seller][:, None],
            self.seller_secondary[seller][:, None],
        )
        rub = _rub_prices(rng, cats.ravel(), rng.standard_normal(3 * n)).reshape(n, 3)
        price = _to_currency(rub, np.broadcast_to(cny[:, None], (n, 3)))
        sku = (self.seller_skus[seller][:, None] * rng.random((n, 3)) ** 2).astype(np.int64)
        max_qty = _CAT_MAX_QTY[cats]
        qty = np.where(rng.random((n, 3)) < 0.18, np.minimum(rng.integers(2, 6, (n, 3)), max_qty), 1)
        used = np.arange(3)[None, :] < lines[:, None]
        digital = ((cats == _GIFT) | ~used).all(axis=1)
        amounts = np.round((qty * price * used).sum(axis=1), 2).tolist()
        # Flat lists of the used lines (row by row), then sliced per order: much cheaper than nested lists.
        row, col = np.nonzero(used)
        codes, names = self.seller_code, _CAT_NAMES
        flat = [
            {"sku": f"{codes[s]}-{k:05d}", "category": names[c], "quantity": q, "unit_price": p}
            for s, c, k, q, p in zip(
                seller[row].tolist(),
                cats[row, col].tolist(),
                sku[row, col].tolist(),
                qty[row, col].tolist(),
                price[row, col].tolist(),
                strict=True,
            )
        ]
        ends = np.cumsum(lines).tolist()
        items = [flat[end - k : end] for end, k in zip(ends, lines.tolist(), strict=True)]
        return items, amounts, digital

    # ---- fraud: shared pieces

    def _emit(
        self,
        ts: int,
        buyer: int,
        seller: int,
        *,
        ip: tuple[str, str],
        device: str | None,
        channel: str,
        card: int,
        address: int,
        items: list[Item],
        pattern: str,
        label_ts: int,
        phone: str | None = None,
    ) -> None:
        f = self.fraud
        cny = bool(self.rng.random() < 0.05)  # fraudsters check out in yuan now and then, as buyers do
        if cny:
            for line in items:
                line["unit_price"] = round(line["unit_price"] / RUB_PER_UNIT["CNY"], 2)
        f.ts.append(ts)
        f.buyer.append(buyer)
        f.phone.append(phone if phone is not None else self.buyer_phone[buyer])
        f.seller.append(seller)
        f.cny.append(cny)
        f.ip.append(ip[0])
        f.ip_country.append(ip[1])
        f.device.append(device)
        f.channel.append(channel)
        f.method.append("card")
        f.card.append(card)
        f.address.append(address)
        f.items.append(items)
        f.amount.append(round(sum(i["quantity"] * i["unit_price"] for i in items), 2))
        f.pattern.append(PATTERNS.index(pattern))
        f.label_ts.append(label_ts)

    def _pick(self, options: Sequence[str], weights: Sequence[float]) -> str:
        return options[int(_weighted(self.rng, np.asarray(weights, dtype=float), 1)[0])]

    def _episode_start(self, duration: int) -> int:
        """When a fraud episode starts: busier days draw more fraud; hours by the fraudsters' clock."""
        rng = self.rng
        day = int(_weighted(rng, self.day_volume, 1)[0])
        hour = int(_weighted(rng, _FRAUD_HOURLY_MSK, 1)[0])
        ts = self._wrap(self.t0 + day * DAY + (hour - _MSK_OFFSET) * HOUR + int(rng.integers(0, HOUR)))
        return max(self.t0, min(ts, self.t1 - duration - 1))

    def _wrap(self, ts: int) -> int:
        """Fold a time that fell off either end of the window back in, keeping its time of day."""
        return self.t0 + (ts - self.t0) % (self.t1 - self.t0)

    def _offsets(self, n: int, duration: int) -> list[int]:
        offsets = np.sort(self.rng.integers(0, max(duration, 1), n))
        offsets[0] = 0
        return list(offsets.tolist())

    def _signup_lead(self) -> int:
        """Seconds between a fraud account's sign-up and its first order: minutes, or a sleeper."""
        rng = self.rng
        if rng.random() < 0.85:
            return int(rng.integers(1, 90)) * MINUTE
        return int(rng.integers(3, 60)) * DAY

    def _chargeback(self, ts: int, median_days: float, sigma: float = 0.5) -> int:
        days = max(2.0, float(self.rng.lognormal(math.log(median_days), sigma)))
        return ts + int(days * DAY)

    def _fraud_buyer(self, created: int, disposable_p: float = 0.45) -> int:
        """A new account: throwaway or random-looking email, often no phone."""
        rng = self.rng
        a, b, c, d = rng.random(4).tolist()
        if d < 0.25:  # a bought or farmed account with a plausible name
            email: str | None = self._legit_emails(1)[0]
        else:
            letters = "".join(chr(97 + x) for x in rng.integers(0, 26, int(rng.integers(5, 10))).tolist())
            local = letters + (str(int(rng.integers(10, 100_000))) if b < 0.7 else "")
            domains = _DISPOSABLE_DOMAINS if a < disposable_p else _FRAUD_EMAIL_DOMAINS
            email = self._unique_email(local, domains[int(c * len(domains))]) if b < 0.97 else None
        self.buyer_id.extend(self.ids.hex("buyer", "u_", 1))
        self.buyer_email.append(email)
        self.buyer_phone.append(self._phones(1)[0] if rng.random() < 0.5 else None)
        self.buyer_created.append(created)
        return len(self.buyer_id) - 1

    def _ip(self, prefixes: Sequence[str], country: str) -> tuple[str, str]:
        p, a, b = self.rng.integers(0, [len(prefixes), 256, 254]).tolist()
        return f"{prefixes[p]}.{a}.{b + 1}", country

    def _fraud_ip(self, residential: float = 0.45) -> tuple[str, str]:
        """Residential proxies look like anyone in Russia; hosting and foreign exits do not."""
        u = self.rng.random()
        if u < residential:
            return self._ip(_RU_HOME, "RU")
        if u < residential + 0.15:
            return self._ip(_RU_HOSTING, "RU")
        if u < residential + 0.25:
            return self._ip(_RU_MOBILE, "RU")
        country = self._pick(list(_HOSTING), [1.0] * len(_HOSTING))
        return self._ip(_HOSTING[country], country)

    def _stolen_card(self, foreign_p: float) -> int:
        if self.rng.random() < foreign_p:
            names, p = _table_p(_STOLEN_FOREIGN_CARD_COUNTRIES)
            return self._new_card(self._pick(names, p.tolist()))
        return self._new_card("RU")

    def _device(self, app_p: float) -> tuple[str, bool]:
        app = bool(self.rng.random() < app_p)
        return self.ids.devices([app])[0], app

    def _seller_for(self, cat: int) -> int:
        sellers = self.cat_sellers[cat]
        if not len(sellers):
            sellers = np.arange(len(self.seller_weight))
        return int(sellers[_weighted(self.rng, self.seller_weight[sellers], 1)[0]])

    def _items(self, cat: int, seller: int, *, dear: float = 0.3) -> list[Item]:
        """One line, priced from the upper part of the category's range (resellable goods)."""
        rng = self.rng
        z = abs(float(rng.standard_normal())) + dear
        price = float(_rub_prices(rng, np.array([cat]), np.array([z]))[0])
        sku = int(self.seller_skus[seller] * float(rng.random()) ** 2)
        qty = int(rng.integers(1, 4)) if cat == _GIFT else 1
        return [_line(f"{self.seller_code[seller]}-{sku:05d}", cat, qty, price)]

    def _risky_category(self, weights: Mapping[str, float]) -> int:
        return _CAT[self._pick(list(weights), list(weights.values()))]

    def _drop_addresses(self, reshipping_budget: int) -> list[tuple[int, int, int]]:
        """Flats where parcels for strangers pile up: (address, active from, active until)."""
        rng = self.rng
        n = max(2, round(reshipping_budget / 12))
        span = self.t1 - self.t0
        drops = []
        for _ in range(n):
            region = (
                int(
                    rng.choice(
                        self.capital_idx, p=self.pop_p[self.capital_idx] / self.pop_p[self.capital_idx].sum()
                    )
                )
                if rng.random() < 0.5
                else int(_weighted(rng, self.pop_p, 1)[0])
            )
            length = min(span, int(rng.integers(7, 29)) * DAY)
            start = self.t0 + int(rng.integers(0, span - length + 1))
            drops.append((self._new_address(region), start, start + length))
        return drops

    def _fraud_address(self, drop_p: float, region_p: FloatArray) -> int:
        rng = self.rng
        if rng.random() < drop_p:
            return self.drops[int(rng.integers(len(self.drops)))][0]
        return self._new_address(int(_weighted(rng, region_p, 1)[0]))

    # ---- fraud patterns

    def _stolen_card_burst(self, budget: int) -> None:
        """One stolen card, several new accounts and devices, an hour or two, dear resellable goods."""
        rng = self.rng
        goods = {"phones": 0.35, "electronics": 0.35, "gift_cards": 0.2, "computers": 0.1}
        while budget > 0:
            n = min(budget, int(rng.integers(3, 9)))
            budget -= n
            card = self._stolen_card(foreign_p=0.55)
            duration = int(rng.integers(20, 121)) * MINUTE
            start = self._episode_start(duration)
            accounts: list[tuple[int, str, bool]] = []
            for off in self._offsets(n, duration):
                ts = start + off
                if accounts and rng.random() < 0.25:
                    buyer, device, app = accounts[int(rng.integers(len(accounts)))]
                else:
                    if accounts and rng.random() < 0.3:
                        _, device, app = accounts[int(rng.integers(len(accounts)))]
                    else:
                        device, app = self._device(app_p=0.3)
                    buyer = self._fraud_buyer(ts - self._signup_lead())
                    accounts.append((buyer, device, app))
                cat = self._risky_category(goods)
                seller = self._seller_for(cat)
                self._emit(
                    ts,
                    buyer,
                    seller,
                    ip=self._fraud_ip(),
                    device=device,
                    channel="app" if app else "web",
                    card=card,
                    address=-1 if cat == _GIFT else self._fraud_address(0.2, self.pop_p),
                    items=self._items(cat, seller),
                    pattern="stolen_card_burst",
                    label_ts=self._chargeback(ts, 20.0),
                )

    def _card_testing(self, budget: int) -> None:
        """A script on one device and IP trying many cards (often one BIN range) with tiny orders."""
        rng = self.rng
        names, p = _table_p(_STOLEN_FOREIGN_CARD_COUNTRIES)
        while budget > 0:
            n = min(budget, int(rng.integers(8, 41)))
            budget -= n
            duration = int(rng.integers(3, 26)) * MINUTE
            start = self._episode_start(duration)
            api = bool(rng.random() < 0.5)
            device = None if api and rng.random() < 0.6 else self._device(app_p=0.0)[0]
            ip = self._fraud_ip(residential=0.3)
            accounts = [
                self._fraud_buyer(start - self._signup_lead(), 0.6) for _ in range(int(rng.integers(1, 4)))
            ]
            country = "RU" if rng.random() < 0.4 else self._pick(names, p.tolist())
            bins = [
                _BINS[country][int(rng.integers(len(_BINS[country])))] for _ in range(int(rng.integers(1, 4)))
            ]
            digital = bool(rng.random() < 0.6)
            cat = _GIFT if digital else _CAT["accessories"]
            seller = self._seller_for(cat)
            address = -1 if digital else self._new_address(int(_weighted(rng, self.pop_p, 1)[0]))
            cards: list[int] = []
            for off in self._offsets(n, duration):
                ts = start + off
                if cards and rng.random() < 0.2:
                    card = cards[int(rng.integers(len(cards)))]
                else:
                    card = self._new_card(country, bins[int(rng.integers(len(bins)))])
                    cards.append(card)
                price = (
                    float(rng.choice([100.0, 150.0, 200.0, 300.0, 500.0]))
                    if digital
                    else 49.0 + 10 * int(rng.integers(0, 26))
                )
                sku = f"{self.seller_code[seller]}-{int(rng.integers(0, 20)):05d}"
                self._emit(
                    ts,
                    accounts[int(rng.integers(len(accounts)))],
                    seller,
                    ip=ip,
                    device=device,
                    channel="api" if api else "web",
                    card=card,
                    address=address,
                    items=[_line(sku, cat, 1, price)],
                    pattern="card_testing",
                    label_ts=self._chargeback(ts, 12.0),
                )

    def _account_takeover(self, budget: int) -> None:
        """An old account suddenly on a new device and IP, shipping dear goods somewhere new."""
        rng = self.rng
        if budget <= 0:
            return
        n_pop = self.n_legit_buyers
        eligible = np.flatnonzero(self.created[:n_pop] < self.t0 - 180 * DAY)
        if not len(eligible):
            eligible = np.flatnonzero(~self.is_new)
        w = self.weight[eligible]
        victims = rng.choice(eligible, size=min(budget, len(eligible)), replace=False, p=w / w.sum()).tolist()
        goods = {"phones": 0.3, "electronics": 0.3, "computers": 0.15, "jewelry": 0.1, "gift_cards": 0.15}
        k = 0
        while budget > 0:
            n = min(budget, 1 + int(_weighted(rng, np.array([0.5, 0.3, 0.2]), 1)[0]))
            budget -= n
            victim = victims[k % len(victims)]
            k += 1
            duration = int(rng.integers(10, 180)) * MINUTE
            start = self._episode_start(duration)
            device, app = self._device(app_p=0.4)
            u = rng.random()
            ip = self._ip(*self._pick_hosting()) if u < 0.35 else self._fraud_ip(residential=0.6)
            phone = self._phones(1)[0] if rng.random() < 0.6 else None  # the attacker's own number
            address = self._fraud_address(0.45, self.remote_p)
            stored = int(self.card0[victim])
            card = stored if stored >= 0 and rng.random() < 0.7 else self._stolen_card(foreign_p=0.4)
            for off in self._offsets(n, duration):
                ts = start + off
                cat = self._risky_category(goods)
                seller = self._seller_for(cat)
                self._emit(
                    ts,
                    victim,
                    seller,
                    ip=ip,
                    device=device,
                    channel="app" if app else "web",
                    card=card,
                    address=-1 if cat == _GIFT else address,
                    items=self._items(cat, seller, dear=0.6),
                    pattern="account_takeover",
                    label_ts=self._chargeback(ts, 6.0),
                    phone=phone,
                )

    def _pick_hosting(self) -> tuple[tuple[str, ...], str]:
        country = self._pick(list(_HOSTING), [1.0] * len(_HOSTING))
        return _HOSTING[country], country

    def _reshipping(self, budget: int) -> None:
        """Drop flats receiving for many different new buyers, each on its own card, over weeks."""
        rng = self.rng
        if budget <= 0:
            return
        goods = {"phones": 0.3, "electronics": 0.3, "computers": 0.15, "shoes": 0.15, "jewelry": 0.1}
        quota = rng.integers(5, 26, len(self.drops)).astype(float)
        counts = np.floor(quota / quota.sum() * budget).astype(int)
        counts[: budget - int(counts.sum())] += 1
        for (address, begin, end), n in zip(self.drops, counts.tolist(), strict=True):
            operators = [self._device(app_p=0.5) for _ in range(int(rng.integers(1, 3)))]
            for ts in np.sort(rng.integers(begin, end, n)).tolist():
                if rng.random() < 0.2:
                    device, app = operators[int(rng.integers(len(operators)))]
                else:
                    device, app = self._device(app_p=0.5)
                u = rng.random()
                ip = (
                    self._ip(_RU_HOME, "RU")
                    if u < 0.7
                    else self._ip(_RU_MOBILE, "RU")
                    if u < 0.85
                    else self._fraud_ip()
                )
                cat = self._risky_category(goods)
                seller = self._seller_for(cat)
                self._emit(
                    ts,
                    self._fraud_buyer(ts - self._signup_lead(), 0.35),
                    seller,
                    ip=ip,
                    device=device,
                    channel="app" if app else "web",
                    card=self._stolen_card(foreign_p=0.35),
                    address=address,
                    items=self._items(cat, seller),
                    pattern="reshipping",
                    label_ts=self._chargeback(ts, 20.0),
                )

    def _colluding_seller(self, budget: int) -> None:
        """A small seller and a ring of fake buyers (few cards, few devices) buying its items in bursts."""
        rng = self.rng
        if budget <= 0:
            return
        small = np.flatnonzero(self.seller_weight <= np.median(self.seller_weight))
        sellers = rng.choice(small, size=min(max(1, round(budget / 80)), len(small)), replace=False).tolist()
        counts = np.full(len(sellers), budget // len(sellers))
        counts[: budget - int(counts.sum())] += 1
        for seller, n_orders in zip(sellers, counts.tolist(), strict=True):
            region = int(_weighted(rng, self.pop_p, 1)[0])
            cards = [
                self._new_card("RU" if rng.random() < 0.85 else "KZ") for _ in range(int(rng.integers(2, 4)))
            ]
            devices = [self._device(app_p=0.6) for _ in range(int(rng.integers(1, 4)))]
            ips = [self._ip(_RU_HOME, "RU") for _ in range(int(rng.integers(1, 3)))]
            addresses = [self._new_address(region) for _ in range(int(rng.integers(1, 4)))]
            accounts: list[int | None] = [None] * int(rng.integers(4, 13))
            cat = int(self.seller_primary[seller])
            skus = [
                int(self.seller_skus[seller] * float(rng.random()) ** 2)
                for _ in range(int(rng.integers(1, 4)))
            ]
            bursts = []
            quota = n_orders
            while quota > 0:
                m = min(quota, int(rng.integers(5, 21)))
                quota -= m
                duration = int(rng.integers(1, 5)) * HOUR
                bursts.append((self._episode_start(duration), m, duration))
            for start, m, duration in sorted(bursts):  # in time order, so accounts exist before they buy
                for off in self._offsets(m, duration):
                    ts = start + off
                    a = int(rng.integers(len(accounts)))
                    if accounts[a] is None:
                        accounts[a] = self._fraud_buyer(ts - int(rng.integers(1, 72)) * HOUR, 0.2)
                    buyer = accounts[a]
                    assert buyer is not None
                    device, app = devices[int(rng.integers(len(devices)))]
                    price = float(_CAT_MEDIAN[cat]) * float(rng.uniform(1.5, 4.0))
                    price = math.ceil(price / 10) * 10 - 1.0
                    sku = f"{self.seller_code[seller]}-{skus[int(rng.integers(len(skus)))]:05d}"
                    self._emit(
                        ts,
                        buyer,
                        seller,
                        ip=ips[int(rng.integers(len(ips)))],
                        device=device,
                        channel="app" if app else "web",
                        card=cards[int(rng.integers(len(cards)))],
                        address=-1 if cat == _GIFT else addresses[int(rng.integers(len(addresses)))],
                        items=[_line(sku, cat, int(rng.integers(1, 3)), price)],
                        pattern="colluding_seller",
                        label_ts=self._chargeback(ts, 30.0),
                    )

    def _friendly_fraud(self, budget: int) -> None:
        """A real repeat buyer, on their own device, card and address, who disputes after delivery."""
        rng = self.rng
        if budget <= 0:
            return
        n_pop = self.n_legit_buyers
        eligible = np.flatnonzero((self.created[:n_pop] < self.t0 - 60 * DAY) & (self.card0[:n_pop] >= 0))
        w = self.weight[eligible]
        buyers = rng.choice(eligible, size=min(budget, len(eligible)), replace=False, p=w / w.sum()).tolist()
        goods = {"electronics": 0.35, "clothing": 0.2, "shoes": 0.15, "phones": 0.15, "beauty": 0.15}
        for k in range(budget):
            b = buyers[k % len(buyers)]
            day = int(_weighted(rng, self.day_volume, 1)[0])
            local = int(_weighted(rng, _LEGIT_HOURLY, 1)[0]) * HOUR + int(rng.integers(0, HOUR))
            ts = self._wrap(self.t0 + day * DAY + local - int(self.reg_offset[self.region[b]]) * HOUR)
            app = bool(self.app0[b])
            cat = self._risky_category(goods)
            seller = self._seller_for(cat)
            address = int(self.home[b])
            delivered = _DELIVERY_DAYS[int(self.reg_tier[self.addr_region[address]])] * float(
                rng.lognormal(0, 0.2)
            )
            self._emit(
                ts,
                b,
                seller,
                ip=(self.home_ip[b], "RU"),
                device=self.dev0[b],
                channel="app" if app else "web",
                card=int(self.card0[b]),
                address=address,
                items=self._items(cat, seller, dear=0.0),
                pattern="friendly_fraud",
                label_ts=ts + int(delivered * DAY) + self._chargeback(0, 15.0),
            )

    # ---- payloads

    def _assemble(self, cols: _Columns) -> list[SimulatedOrder]:
        n = len(cols)
        ts = np.asarray(cols.ts, dtype=np.int64)
        order = np.argsort(ts, kind="stable")
        order_ids = self.ids.hex("order", "ord_", n)
        created_at = _rfc3339(ts[order])
        account_created = _rfc3339(np.asarray(self.buyer_created, dtype=np.int64))
        region_code = [self.regions[r].code for r in self.addr_region]
        buyer_id, buyer_email, seller_id = self.buyer_id, self.buyer_email, self.seller_id
        card_fp, card_bin, card_country = self.card_fp, self.card_bin, self.card_country
        addr_city, addr_postal, addr_line = self.addr_city, self.addr_postal, self.addr_line
        out: list[SimulatedOrder] = []
        for pos, j in enumerate(order.tolist()):
            b = cols.buyer[j]
            buyer: dict[str, Any] = {"id": buyer_id[b], "account_created_at": account_created[b]}
            if (email := buyer_email[b]) is not None:
                buyer["email"] = email
            if (phone := cols.phone[j]) is not None:
                buyer["phone"] = phone
            c = cols.card[j]
            payment: dict[str, Any] = (
                {"method": cols.method[j]}
                if c < 0
                else {
                    "method": cols.method[j],
                    "card_fingerprint": card_fp[c],
                    "card_bin": card_bin[c],
                    "card_country": card_country[c],
                }
            )
            payload: dict[str, Any] = {
                "order_id": order_ids[pos],
                "created_at": created_at[pos],
                "buyer": buyer,
                "seller": {"id": seller_id[cols.seller[j]]},
                "amount": cols.amount[j],
                "currency": "CNY" if cols.cny[j] else "RUB",
                "ip": cols.ip[j],
                "ip_country": cols.ip_country[j],
                "channel": cols.channel[j],
                "payment": payment,
                "items": cols.items[j],
            }
            if (device := cols.device[j]) is not None:
                payload["device_id"] = device
            if (a := cols.address[j]) >= 0:
                payload["shipping"] = {
                    "country": "RU",
                    "region": region_code[a],
                    "city": addr_city[a],
                    "postal_code": addr_postal[a],
                    "address": addr_line[a],
                }
            p, label = cols.pattern[j], cols.label_ts[j]
            reported = datetime.fromtimestamp(label, UTC) if label >= 0 else None
            out.append(SimulatedOrder(payload, p != 0, PATTERNS[p], reported))
        return out

"""The marketplace simulator: deterministic, valid against the order contract, and shaped like the
fraud it claims to contain (bursts on one card, drops shared by strangers, an 11.11 peak ...)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dozor.domain.contracts import Order
from dozor.domain.geography import REGIONS, remoteness_tier
from dozor_training.fraud.simulator import (
    CAPITAL_REGIONS,
    DEFAULT_PATTERN_MIX,
    FRAUD_PATTERNS,
    SimulatedOrder,
    SimulationConfig,
    simulate,
    write_history,
)

# Ten days around 11.11 with a high fraud rate, so every pattern shows up in a small history.
CONFIG = SimulationConfig(
    days=10, seed=3, start=datetime(2026, 11, 6, tzinfo=UTC), orders_per_day=600, fraud_rate=0.05
)
SMALL = SimulationConfig(days=3, seed=5, orders_per_day=300, fraud_rate=0.05)


@pytest.fixture(scope="module")
def history() -> list[SimulatedOrder]:
    return simulate(CONFIG)


def _digest(orders: list[SimulatedOrder]) -> str:
    rows = [
        [o.order, o.is_fraud, o.pattern, o.label_reported_at and o.label_reported_at.isoformat()]
        for o in orders
    ]
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False).encode()).hexdigest()


def _created(o: SimulatedOrder) -> datetime:
    return datetime.fromisoformat(o.order["created_at"])


def _address(o: SimulatedOrder) -> str | None:
    ship = o.order.get("shipping")
    return f"{ship['postal_code']} {ship['city']}, {ship['address']}" if ship else None


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_gives_the_same_history() -> None:
    assert _digest(simulate(SMALL)) == _digest(simulate(SMALL))


def test_a_different_seed_gives_a_different_history() -> None:
    other = SimulationConfig(days=SMALL.days, seed=SMALL.seed + 1, orders_per_day=SMALL.orders_per_day)
    assert _digest(simulate(SMALL)) != _digest(simulate(other))


def test_history_does_not_depend_on_hash_randomisation() -> None:
    # Given a fresh interpreter whose string hashing differs from this one's (randomised per process)
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})\n"
        "from tests.unit.training.test_simulator import SMALL, _digest\n"
        "from dozor_training.fraud.simulator import simulate\n"
        "print(_digest(simulate(SMALL)))\n"
    )
    env = os.environ | {"PYTHONHASHSEED": "0" if os.environ.get("PYTHONHASHSEED") != "0" else "1"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    # Then the same seed still gives the same history
    assert run.stdout.strip() == _digest(simulate(SMALL))


# --- the contract and the shape of the stream ---------------------------------------------------


def test_every_order_validates_against_the_contract(history: list[SimulatedOrder]) -> None:
    for o in history:
        order = Order.model_validate(o.order)
        assert order.amount == pytest.approx(
            sum(i.quantity * (i.unit_price or 0) for i in order.items), abs=0.01
        )
        assert order.buyer.account_created_at is not None
        assert order.buyer.account_created_at <= order.created_at


def test_orders_are_sorted_by_time_with_unique_ids(history: list[SimulatedOrder]) -> None:
    times = [_created(o) for o in history]
    assert times == sorted(times)
    assert len({o.order["order_id"] for o in history}) == len(history)
    assert CONFIG.start <= times[0] and times[-1] < CONFIG.start + timedelta(days=CONFIG.days)


def test_fraud_rate_is_near_the_target(history: list[SimulatedOrder]) -> None:
    rate = sum(o.is_fraud for o in history) / len(history)
    assert rate == pytest.approx(CONFIG.fraud_rate, abs=0.005)


def test_every_pattern_is_present_in_roughly_its_share(history: list[SimulatedOrder]) -> None:
    fraud = Counter(o.pattern for o in history if o.is_fraud)
    total = sum(fraud.values())
    assert set(fraud) == set(FRAUD_PATTERNS)
    for pattern, share in DEFAULT_PATTERN_MIX.items():
        assert fraud[pattern] / total == pytest.approx(share, abs=0.02), pattern
    assert all(o.is_fraud == (o.pattern != "legit") for o in history)


def test_pattern_mix_is_tunable() -> None:
    config = SimulationConfig(
        days=2, seed=1, orders_per_day=300, fraud_rate=0.05, pattern_mix={"card_testing": 1}
    )
    assert {o.pattern for o in simulate(config) if o.is_fraud} == {"card_testing"}


@pytest.mark.parametrize(
    "bad",
    [
        {"fraud_rate": 1.0},
        {"days": 0},
        {"pattern_mix": {"phishing": 1.0}},
        {"pattern_mix": {"card_testing": 0.0}},
        {"start": datetime(2026, 10, 1)},  # naive on purpose
    ],
)
def test_nonsense_configs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SimulationConfig(**bad)  # type: ignore[arg-type]


def test_moscow_and_st_petersburg_take_about_the_configured_share(history: list[SimulatedOrder]) -> None:
    shipped = [o.order["shipping"]["region"] for o in history if not o.is_fraud and "shipping" in o.order]
    share = sum(region in CAPITAL_REGIONS for region in shipped) / len(shipped)
    assert share == pytest.approx(CONFIG.capital_share, abs=0.05)
    assert len(set(shipped)) > 30  # and the rest spread over the country


def test_the_11_11_peak_is_visible(history: list[SimulatedOrder]) -> None:
    per_day = Counter((_created(o) + timedelta(hours=3)).date() for o in history)  # Moscow dates
    peak = per_day.pop(datetime(2026, 11, 11).date())
    ordinary = sorted(per_day.values())[len(per_day) // 2]
    assert peak > 2.2 * ordinary


def test_legit_traffic_follows_the_buyers_day(history: list[SimulatedOrder]) -> None:
    # Local hour by the shipping region's offset: few orders at 3-5 am, many in the evening.
    hours = Counter(
        (_created(o) + timedelta(hours=REGIONS[o.order["shipping"]["region"]].utc_offset)).hour
        for o in history
        if not o.is_fraud and "shipping" in o.order
    )
    assert sum(hours[h] for h in (3, 4, 5)) * 5 < sum(hours[h] for h in (19, 20, 21))


def test_legit_buyers_make_noise_for_mismatch_rules(history: list[SimulatedOrder]) -> None:
    legit = [o.order for o in history if not o.is_fraud]
    foreign_card = sum(o["payment"].get("card_country", "RU") != "RU" for o in legit) / len(legit)
    foreign_ip = sum(o["ip_country"] != "RU" for o in legit) / len(legit)
    assert 0.005 < foreign_card < 0.1
    assert 0.01 < foreign_ip < 0.15
    assert Counter(o["currency"] for o in legit)["CNY"] > 0


def test_many_legit_buyers_come_back(history: list[SimulatedOrder]) -> None:
    per_buyer = Counter(o.order["buyer"]["id"] for o in history if not o.is_fraud)
    repeat_orders = sum(n for n in per_buyer.values() if n > 1)
    assert repeat_orders / sum(per_buyer.values()) > 0.3


# --- the fraud patterns look like themselves ----------------------------------------------------


def test_reshipping_drops_are_shared_by_many_new_buyers(history: list[SimulatedOrder]) -> None:
    buyers_at = defaultdict(set)
    for o in history:
        if o.pattern == "reshipping":
            buyers_at[_address(o)].add(o.order["buyer"]["id"])
    sizes = sorted(len(b) for b in buyers_at.values())
    assert sizes[-1] >= 5
    shared = sum(s for s in sizes if s >= 3)
    assert shared / sum(sizes) > 0.8


def test_a_stolen_card_bursts_across_accounts_within_hours(history: list[SimulatedOrder]) -> None:
    by_card = defaultdict(list)
    for o in history:
        if o.pattern == "stolen_card_burst":
            by_card[o.order["payment"]["card_fingerprint"]].append(o)
    bursts = [orders for orders in by_card.values() if len(orders) >= 3]
    assert bursts
    for orders in bursts:
        assert _created(orders[-1]) - _created(orders[0]) <= timedelta(hours=2)
        assert len({o.order["buyer"]["id"] for o in orders}) >= 2


def test_card_testing_tries_many_cards_from_one_place_in_minutes(history: list[SimulatedOrder]) -> None:
    by_ip = defaultdict(list)
    for o in history:
        if o.pattern == "card_testing":
            by_ip[o.order["ip"]].append(o)
    biggest = max(by_ip.values(), key=len)
    assert len(biggest) >= 8
    assert len({o.order["payment"]["card_fingerprint"] for o in biggest}) >= 5
    assert _created(biggest[-1]) - _created(biggest[0]) <= timedelta(minutes=30)
    assert max(o.order["amount"] for o in biggest) <= 1000


def test_account_takeover_is_an_old_account_on_a_new_device(history: list[SimulatedOrder]) -> None:
    seen_devices: defaultdict[str, set[str | None]] = defaultdict(set)
    takeovers = 0
    for o in history:
        buyer, device = o.order["buyer"], o.order.get("device_id")
        if o.pattern == "account_takeover":
            takeovers += 1
            assert _created(o) - datetime.fromisoformat(buyer["account_created_at"]) > timedelta(days=180)
            assert device not in seen_devices[buyer["id"]] or device is None
        elif not o.is_fraud:
            seen_devices[buyer["id"]].add(device)
    assert takeovers


def test_colluding_sellers_get_bursts_from_a_small_ring(history: list[SimulatedOrder]) -> None:
    ring = defaultdict(list)
    for o in history:
        if o.pattern == "colluding_seller":
            ring[o.order["seller"]["id"]].append(o)
    for orders in ring.values():
        assert len({o.order["payment"]["card_fingerprint"] for o in orders}) <= 3
        assert len({o.order.get("device_id") for o in orders}) <= 3
        assert len({o.order["buyer"]["id"] for o in orders}) <= 12


def test_friendly_fraud_comes_from_established_buyers(history: list[SimulatedOrder]) -> None:
    legit_buyers = {o.order["buyer"]["id"] for o in history if not o.is_fraud}
    friendly = [o for o in history if o.pattern == "friendly_fraud"]
    assert friendly
    assert sum(o.order["buyer"]["id"] in legit_buyers for o in friendly) / len(friendly) > 0.5


# --- labels ---------------------------------------------------------------------------------------


def test_labels_arrive_after_their_orders(history: list[SimulatedOrder]) -> None:
    for o in history:
        if o.is_fraud:
            assert o.label_reported_at is not None
            assert o.label_reported_at - _created(o) >= timedelta(days=2)
        elif o.label_reported_at is not None:
            assert o.label_reported_at > _created(o)
    legit = [o for o in history if not o.is_fraud]
    labelled = sum(o.label_reported_at is not None for o in legit) / len(legit)
    assert labelled == pytest.approx(CONFIG.legit_label_rate, abs=0.03)
    delays = sorted(
        (o.label_reported_at - _created(o)).days for o in history if o.is_fraud and o.label_reported_at
    )
    assert 7 <= delays[len(delays) // 2] <= 30  # chargebacks take weeks


def test_write_history_writes_orders_and_labels(history: list[SimulatedOrder], tmp_path: Path) -> None:
    orders_path, labels_path = write_history(history, tmp_path)
    orders = [json.loads(line) for line in orders_path.read_text(encoding="utf-8").splitlines()]
    labels = [json.loads(line) for line in labels_path.read_text(encoding="utf-8").splitlines()]

    assert orders == [o.order for o in history]
    created = {o["order_id"]: datetime.fromisoformat(o["created_at"]) for o in orders}
    truth = {o.order["order_id"]: o for o in history}
    assert len(labels) == sum(o.label_reported_at is not None for o in history)
    for row in labels:
        assert set(row) == {"order_id", "label", "reported_at", "pattern"}
        assert datetime.fromisoformat(row["reported_at"]) > created[row["order_id"]]
        assert row["label"] == ("fraud" if truth[row["order_id"]].is_fraud else "legit")
        assert row["pattern"] == truth[row["order_id"]].pattern
    assert [r["reported_at"] for r in labels] == sorted(r["reported_at"] for r in labels)


def test_write_history_refuses_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_history([], tmp_path, fmt="parquet")


# --- geography ------------------------------------------------------------------------------------


def test_regions_span_eleven_time_zones_and_four_tiers() -> None:
    assert {r.utc_offset for r in REGIONS.values()} == set(range(2, 13))
    assert {r.tier for r in REGIONS.values()} == {0, 1, 2, 3}
    assert all(code == r.code and code.startswith("RU-") for code, r in REGIONS.items())


@pytest.mark.parametrize(
    ("code", "tier"),
    [
        ("RU-MOW", 0),
        ("RU-SPE", 0),
        ("ru-mos", 1),
        (" RU-NVS ", 1),
        ("RU-IRK", 2),
        ("RU-KAM", 3),
        ("RU-SA", 3),
        ("RU-YAK", 3),
        ("RU-XXX", None),
        ("", None),
        (None, None),
    ],
)
def test_remoteness_tier(code: str | None, tier: int | None) -> None:
    assert remoteness_tier(code) == tier

"""Order features: entity identification, the feature vector, and point-in-time correctness."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dozor.domain.contracts import Order
from dozor.domain.fraud.features import FEATURE_INDEX, FEATURE_NAMES, identify
from dozor.domain.privacy import PiiHasher

if TYPE_CHECKING:
    from .conftest import FeatureReplay

T0 = datetime(2025, 6, 10, 9, 0, tzinfo=UTC)
MOSCOW_FLAT = {"country": "RU", "region": "RU-MOW", "city": "Москва", "address": "Тверская 1, кв 5"}

MakeOrder = Callable[..., Order]


def value(row: np.ndarray, name: str) -> float:
    return float(row[FEATURE_INDEX[name]])


# ---------------------------------------------------------------------------------------------
# identify
# ---------------------------------------------------------------------------------------------


def test_given_personal_data_when_identified_then_it_is_hashed_and_ids_are_kept(
    make_order: MakeOrder,
) -> None:
    # Given an order with every identifying field
    order = make_order(
        "o1",
        T0,
        buyer="buyer-42",
        seller="seller-7",
        card="fp-1234",
        device="dev-9",
        ip="203.0.113.5",
        email="alice@example.com",
        shipping=MOSCOW_FLAT,
    )
    # When identified
    entities = identify(order, PiiHasher(b"k"))
    # Then buyer/seller/device ids are kept as they are
    assert entities["buyer"].value == "buyer-42"
    assert entities["seller"].value == "seller-7"
    assert entities["device"].value == "dev-9"
    # And the personal kinds never carry the raw value
    raw = {"card": "fp-1234", "ip": "203.0.113.5", "email": "alice@example.com", "address": "Тверская"}
    for kind, secret in raw.items():
        assert secret.lower() not in entities[kind].value.lower(), kind
        assert secret.lower() not in entities[kind].pk.lower(), kind
    assert {e.kind for e in entities.values()} == {
        "buyer",
        "seller",
        "device",
        "card",
        "ip",
        "email",
        "address",
    }


def test_given_missing_optional_fields_when_identified_then_only_buyer_and_seller(
    make_order: MakeOrder,
) -> None:
    # Given an order with only the required fields
    order = make_order("o1", T0)
    # When identified
    entities = identify(order, PiiHasher(b"k"))
    # Then only the always-present entities are there
    assert set(entities) == {"buyer", "seller"}


def test_given_the_same_card_in_two_orders_then_it_maps_to_one_entity(make_order: MakeOrder) -> None:
    # Given two orders by different buyers with the same card fingerprint
    hasher = PiiHasher(b"k")
    a = make_order("o1", T0, buyer="A", card="fp-1")
    b = make_order("o2", T0 + timedelta(days=3), buyer="B", card="fp-1")
    # When identified with the same key
    # Then the card is the same entity, and a different card is a different one
    assert identify(a, hasher)["card"] == identify(b, hasher)["card"]
    other = make_order("o3", T0, card="fp-2")
    assert identify(other, hasher)["card"] != identify(a, hasher)["card"]


def test_given_different_hash_keys_then_the_same_card_hashes_differently(make_order: MakeOrder) -> None:
    # Given one order
    order = make_order("o1", T0, card="fp-1", email="a@b.ru", ip="198.51.100.1")
    # When identified under two deployment keys
    one, two = identify(order, PiiHasher(b"key-one")), identify(order, PiiHasher(b"key-two"))
    # Then every personal entity differs: hashes are useless without the key
    for kind in ("card", "email", "ip"):
        assert one[kind] != two[kind], kind


def test_given_the_same_string_as_card_and_ip_then_kinds_hash_apart() -> None:
    # Given one value used under two kinds
    hasher = PiiHasher(b"k")
    # Then the hashes differ, so a card can never collide with an ip in the store
    assert hasher("card", "12345") != hasher("ip", "12345")


@pytest.mark.parametrize(
    "spelling",
    ["Alice.Smith@Example.COM", "  alice.smith@example.com ", "ALICE.SMITH@EXAMPLE.COM"],
)
def test_given_email_spellings_differing_in_case_or_padding_then_one_entity(
    make_order: MakeOrder, spelling: str
) -> None:
    # Given the same mailbox written differently
    hasher = PiiHasher(b"k")
    canonical = identify(make_order("o1", T0, email="alice.smith@example.com"), hasher)["email"]
    # When identified
    entity = identify(make_order("o2", T0, email=spelling), hasher)["email"]
    # Then it is the same email entity
    assert entity == canonical


def test_given_email_with_inner_whitespace_runs_then_they_collapse(make_order: MakeOrder) -> None:
    hasher = PiiHasher(b"k")
    one = identify(make_order("o1", T0, email="alice  smith@example.com"), hasher)["email"]
    two = identify(make_order("o2", T0, email="Alice smith@example.com"), hasher)["email"]
    assert one == two


def test_given_address_differing_in_case_then_one_address_entity(make_order: MakeOrder) -> None:
    hasher = PiiHasher(b"k")
    lower = dict(MOSCOW_FLAT, address="тверская 1, кв 5")
    a = identify(make_order("o1", T0, shipping=MOSCOW_FLAT), hasher)["address"]
    b = identify(make_order("o2", T0, shipping=lower), hasher)["address"]
    c = identify(make_order("o3", T0, shipping=dict(MOSCOW_FLAT, address="Тверская 2")), hasher)["address"]
    assert a == b
    assert a != c


# ---------------------------------------------------------------------------------------------
# compute: shape, new entities, velocity, missing data
# ---------------------------------------------------------------------------------------------


def test_given_any_order_then_compute_returns_a_float32_row_of_every_feature(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    row = replay.row(make_order("o1", T0))
    assert row.dtype == np.float32
    assert row.shape == (len(FEATURE_NAMES),)


def test_given_a_brand_new_buyer_then_counts_are_zero_and_age_is_zero(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    # Given an empty store
    # When a first order is scored
    row = replay.row(make_order("o1", T0, amount=5_000))
    # Then the buyer has no history, age 0, and no average to compare with
    for window in ("1h", "24h", "7d", "30d"):
        assert value(row, f"buyer_orders_{window}") == 0.0
    assert value(row, "buyer_amount_30d") == 0.0
    assert value(row, "buyer_lifetime_orders") == 0.0
    assert value(row, "buyer_age_days") == 0.0
    assert math.isnan(value(row, "amount_vs_buyer_avg_30d"))


def test_given_three_card_orders_in_an_hour_then_the_fourth_sees_three(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    # Given three orders with one card at 09:00, 09:10, 09:20 (from different buyers)
    for i in range(3):
        replay.row(make_order(f"o{i}", T0 + timedelta(minutes=10 * i), buyer=f"b{i}", card="fp-1"))
    # When a fourth order with that card comes at 09:30
    row = replay.row(make_order("o4", T0 + timedelta(minutes=30), buyer="b9", card="fp-1"))
    # Then the card was in three earlier orders in the hour and day, by three buyers
    assert value(row, "card_orders_1h") == 3.0
    assert value(row, "card_orders_24h") == 3.0
    assert value(row, "card_distinct_buyers_2mo") == 3.0
    assert value(row, "card_amount_24h") == pytest.approx(3_000.0)
    # And the new buyer of the fourth order has no history of its own
    assert value(row, "buyer_orders_1h") == 0.0


def test_given_card_orders_more_than_an_hour_apart_then_1h_drops_them(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    replay.row(make_order("o1", T0, card="fp-1"))
    row = replay.row(make_order("o2", T0 + timedelta(minutes=61), card="fp-1"))
    assert value(row, "card_orders_1h") == 0.0
    assert value(row, "card_orders_24h") == 1.0


def test_given_card_orders_55_and_60_minutes_before_then_only_the_55_minute_one_is_in_1h(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    # Given card orders at 09:00 and 09:05
    replay.row(make_order("o1", T0, card="fp-1"))
    replay.row(make_order("o2", T0 + timedelta(minutes=5), card="fp-1"))
    # When the card is used again at 10:00
    row = replay.row(make_order("o3", T0 + timedelta(minutes=60), card="fp-1"))
    # Then the 09:05 order (55 min, 11 buckets back) is in the hour, the 09:00 one (12 back) is not
    assert value(row, "card_orders_1h") == 1.0
    assert value(row, "card_orders_24h") == 2.0


def test_given_no_device_then_device_features_are_missing(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    # Given a device-less order after one with a device (so the store is not empty)
    replay.row(make_order("o1", T0, device="dev-1"))
    # When scored
    row = replay.row(make_order("o2", T0 + timedelta(minutes=5)))
    # Then every device feature is NaN (missing), not zero
    device_features = [n for n in FEATURE_NAMES if n.startswith("device_")]
    assert device_features
    assert all(math.isnan(value(row, n)) for n in device_features)
    # while the buyer's are known
    assert value(row, "buyer_orders_1h") == 1.0


@pytest.mark.parametrize(
    ("card_country", "ship_country", "expected"),
    [("RU", "RU", 0.0), ("CN", "RU", 1.0), (None, "RU", math.nan), ("CN", None, math.nan)],
)
def test_given_card_and_shipping_countries_then_mismatch_flag(
    make_order: MakeOrder, replay: FeatureReplay, card_country: str | None, ship_country: str | None, expected
) -> None:
    shipping = {"country": ship_country} if ship_country else None
    order = make_order("o1", T0, card="fp", card_country=card_country, shipping=shipping)
    got = value(replay.row(order), "card_shipping_country_mismatch")
    assert got == expected or (math.isnan(expected) and math.isnan(got))


def test_given_ip_and_card_countries_then_the_other_mismatch_flags(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    # Given a Chinese card, a Kazakh IP and a Russian shipping address
    order = make_order(
        "o1", T0, card="fp", card_country="CN", ip="1.2.3.4", ip_country="KZ", shipping={"country": "RU"}
    )
    row = replay.row(order)
    # Then all three pairs mismatch and the card is foreign
    assert value(row, "ip_shipping_country_mismatch") == 1.0
    assert value(row, "card_ip_country_mismatch") == 1.0
    assert value(row, "foreign_card") == 1.0
    # And a Russian card with a Russian IP shipped in Russia matches everywhere
    home = make_order(
        "o2", T0, card="fp", card_country="RU", ip="1.2.3.4", ip_country="RU", shipping={"country": "RU"}
    )
    home_row = replay.row(home)
    assert value(home_row, "ip_shipping_country_mismatch") == 0.0
    assert value(home_row, "card_ip_country_mismatch") == 0.0
    assert value(home_row, "foreign_card") == 0.0


@pytest.mark.parametrize(
    ("region", "expected"),
    [("RU-MOW", 0.0), ("RU-KAM", 3.0), ("ru-msk", 0.0), ("RU-XXX", math.nan)],
)
def test_given_shipping_region_then_remoteness_tier(
    make_order: MakeOrder, replay: FeatureReplay, region: str, expected: float
) -> None:
    got = value(
        replay.row(make_order("o1", T0, shipping={"country": "RU", "region": region})), "shipping_remoteness"
    )
    assert got == expected or (math.isnan(expected) and math.isnan(got))


def test_given_account_created_36h_before_then_age_is_one_and_a_half_days(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    order = make_order("o1", T0, account_created_at=T0 - timedelta(hours=36))
    assert value(replay.row(order), "account_age_days") == pytest.approx(1.5)
    assert math.isnan(value(replay.row(make_order("o2", T0)), "account_age_days"))


def test_given_buyer_history_then_amount_vs_average_uses_the_last_30_days_only(
    make_order: MakeOrder, replay: FeatureReplay
) -> None:
    # Given a 100,000 RUB order 40 days ago, then 1,000 and 3,000 RUB orders in the last week
    replay.row(make_order("old", T0 - timedelta(days=40), amount=100_000))
    replay.row(make_order("o1", T0 - timedelta(days=6), amount=1_000))
    replay.row(make_order("o2", T0 - timedelta(days=2), amount=3_000))
    # When the buyer orders 400 CNY (5,000 RUB at the contract's reference rate)
    order = make_order("o3", T0, amount=400, currency="CNY")
    row = replay.row(order)
    # Then the order is compared to the 2,000 RUB average of the last 30 days, in roubles
    assert value(row, "amount_vs_buyer_avg_30d") == pytest.approx(order.amount_rub / 2_000)
    assert value(row, "buyer_lifetime_orders") == 3.0
    assert value(row, "buyer_age_days") == pytest.approx(40.0)


@pytest.mark.parametrize(
    ("region", "local_hour", "weekday"),
    # 20:30 UTC on Tuesday 10 June 2025
    [("RU-KAM", 8.5, 2), ("RU-MOW", 23.5, 1), ("RU-YAK", 5.5, 2), (None, 23.5, 1)],
)
def test_given_shipping_region_then_local_hour_uses_its_utc_offset(
    make_order: MakeOrder, replay: FeatureReplay, region: str | None, local_hour: float, weekday: int
) -> None:
    # Given an order at 20:30 UTC (Kamchatka is UTC+12, Yakutsk UTC+9, Moscow UTC+3 and the default)
    shipping = {"country": "RU", "region": region} if region else None
    order = make_order("o1", datetime(2025, 6, 10, 20, 30, tzinfo=UTC), shipping=shipping)
    # When computed
    row = replay.row(order)
    # Then local hour and weekday are the buyer's, past midnight where the offset carries it
    assert value(row, "local_hour") == pytest.approx(local_hour)
    assert value(row, "day_of_week") == weekday


# ---------------------------------------------------------------------------------------------
# Point in time: an order never sees itself or anything after it
# ---------------------------------------------------------------------------------------------

_order_specs = st.lists(
    st.fixed_dictionaries(
        {
            "gap_minutes": st.sampled_from(
                [0, 1, 4, 7, 30, 55, 59, 60, 61, 180, 1439, 1500, 4 * 1440, 12 * 1440]
            ),
            "buyer": st.sampled_from(["A", "B"]),
            "card": st.sampled_from(["fp-1", "fp-2", None]),
            "device": st.sampled_from(["dev-1", None]),
            "amount": st.integers(1, 200_000),
        }
    ),
    min_size=1,
    max_size=8,
)


def _orders_from(specs: list[dict], make_order: MakeOrder) -> list[Order]:
    orders, t = [], T0
    for i, spec in enumerate(specs):
        t += timedelta(minutes=spec["gap_minutes"])
        orders.append(
            make_order(
                f"o{i}",
                t,
                buyer=spec["buyer"],
                card=spec["card"],
                device=spec["device"],
                amount=float(spec["amount"]),
            )
        )
    return orders


@settings(max_examples=60, deadline=None)
@given(specs=_order_specs, data=st.data())
def test_property_given_an_order_sequence_then_features_ignore_the_order_itself_and_later_ones(
    specs: list[dict], data: st.DataObject, make_order: MakeOrder, new_replay: Callable[[], FeatureReplay]
) -> None:
    # Given a time-ordered sequence of orders sharing buyers, cards and devices
    orders = _orders_from(specs, make_order)
    k = data.draw(st.integers(0, len(orders) - 1), label="k")

    # When the whole sequence is replayed, and separately only up to order k
    full = new_replay()
    rows = [full.row(o) for o in orders]
    prefix = new_replay()
    prefix_row = [prefix.row(o) for o in orders[: k + 1]][-1]

    # Then order k's features do not depend on the orders after it
    np.testing.assert_array_equal(rows[k], prefix_row)

    # And its entity features count exactly the earlier orders sharing the entity (by the
    # bucket rule), never the order itself
    order, earlier = orders[k], orders[:k]
    for kind in ("buyer", "card", "device"):
        key = _raw(order, kind)
        if key is None:
            assert math.isnan(value(rows[k], f"{kind}_lifetime_orders"))
            continue
        same = [o for o in earlier if _raw(o, kind) == key]
        assert value(rows[k], f"{kind}_lifetime_orders") == len(same)
        for window in _BUCKET:
            inside = [o for o in same if _in_window(o, order, window)]
            assert value(rows[k], f"{kind}_orders_{window}") == len(inside), (kind, window)
            if window in {"24h", "30d"}:
                got = value(rows[k], f"{kind}_amount_{window}")
                assert got == pytest.approx(sum(o.amount_rub for o in inside)), (kind, window)
        expected_age = (order.created_at - same[0].created_at).total_seconds() / 86400 if same else 0.0
        assert value(rows[k], f"{kind}_age_days") == pytest.approx(expected_age, rel=1e-5, abs=1e-5)


# window -> (bucket seconds, buckets in the window)
_BUCKET = {"1h": (300, 12), "24h": (3600, 24), "7d": (86400, 7), "30d": (86400, 30)}


def _in_window(earlier: Order, now: Order, window: str) -> bool:
    size, count = _BUCKET[window]
    back = int(now.created_at.timestamp()) // size - int(earlier.created_at.timestamp()) // size
    return 0 <= back < count


def _raw(order: Order, kind: str) -> str | None:
    if kind == "buyer":
        return order.buyer.id
    if kind == "card":
        return order.payment.card_fingerprint if order.payment else None
    return order.device_id

"""Pseudonymised orders: no personal value survives, and the features stay what they were."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import numpy as np
import pytest

from dozor.domain.contracts import Order
from dozor.domain.fraud.features import FEATURE_INDEX, compute, identify, view
from dozor.domain.privacy import PiiHasher, pseudonymise

HASHER = PiiHasher(b"unit-test-pii-key")

ORDER = Order.model_validate(
    {
        "order_id": "o-1",
        "created_at": datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        "buyer": {"id": "b-1", "email": " Ivan.Petrov1987@Mailinator.com", "phone": "+79161234567"},
        "seller": {"id": "s-1"},
        "amount": 8990.0,
        "currency": "RUB",
        "ip": "95.165.10.20",
        "ip_country": "RU",
        "payment": {
            "method": "card",
            "card_fingerprint": "fp-4f2a9c",
            "card_bin": "427600",
            "card_country": "RU",
        },
        "shipping": {
            "country": "RU",
            "region": "RU-MOW",
            "city": "Moscow",
            "postal_code": "125009",
            "address": "ul. Tverskaya 7, kv 12",
        },
    }
)
RAW = ("ivan", "petrov", "1987", "+7916", "95.165", "fp-4f2a9c", "tverskaya")


def test_given_an_order_then_no_personal_value_is_left_in_its_payload() -> None:
    stored = pseudonymise(ORDER, HASHER).model_dump_json().lower()
    assert not [raw for raw in RAW if raw in stored]
    # What is not personal, and what the features read, stays readable
    assert "mailinator.com" in stored and "427600" in stored and "ru-mow" in stored


def test_given_the_same_person_twice_then_the_pseudonyms_match_and_other_keys_differ() -> None:
    again = ORDER.model_copy(
        update={"buyer": ORDER.buyer.model_copy(update={"email": "ivan.petrov1987@mailinator.com"})}
    )
    assert pseudonymise(again, HASHER).buyer.email == pseudonymise(ORDER, HASHER).buyer.email
    other_key = pseudonymise(ORDER, PiiHasher(b"another key"))
    assert other_key.payment.card_fingerprint != pseudonymise(ORDER, HASHER).payment.card_fingerprint


def test_given_a_pseudonymised_order_then_its_order_features_are_unchanged() -> None:
    stored = pseudonymise(ORDER, HASHER)
    before = compute(view(ORDER, identify(ORDER, HASHER), {}))
    after = compute(view(stored, identify(stored, HASHER), {}))
    np.testing.assert_array_equal(before, after)  # NaN where missing, in both
    assert before[FEATURE_INDEX["email_digit_share"]] > 0 and before[FEATURE_INDEX["email_disposable"]] == 1
    # And the stored card is the card entity's key in the Features table
    assert stored.payment.card_fingerprint == identify(ORDER, HASHER)["card"].value


@pytest.mark.parametrize(
    "key", [b"", b"unit-test-pii-key", bytes(range(64)), b"k" * 65, "ключ".encode() * 40]
)
def test_the_hasher_is_hmac_sha256_of_kind_and_value_for_any_key(key: bytes) -> None:
    # Its padded key blocks are hashed once; what it gives must stay the standard HMAC (the
    # Features table's keys and the stored pseudonyms are made of it), for keys shorter and
    # longer than SHA-256's block, and for values outside ASCII.
    hasher = PiiHasher(key)
    for kind, value in [
        ("card", "fp-4f2a9c"),
        ("address", "ru|ru-mow|москва|125009|ул. тверская 7"),
        ("ip", ""),
    ]:
        expected = hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]
        assert hasher(kind, value) == expected
        assert hasher(kind, value) == expected  # remembered: the same answer

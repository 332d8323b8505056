"""Zero-amount orders (fully discounted: promo code, bonus points, gift certificate) are real orders.

The contract accepts an amount of 0; it refuses negative amounts and non-zero amounts below one
minor unit. Every feature of a zero-amount order, and of the orders after it, is a number or
NaN (missing), never infinite, and serving scores it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from dozor.domain.contracts import Order
from dozor.domain.fraud.features import FEATURE_INDEX
from dozor.domain.fraud.model import FraudModel
from dozor_training.fraud.replay import replay
from dozor_training.history import open_orders
from dozor_training.history_writer import write_orders
from tests.helpers.orders import build_order

T0 = datetime(2026, 10, 1, 12, tzinfo=UTC)
BASE = {
    "order_id": "o-1",
    "created_at": "2026-10-01T12:00:00Z",
    "buyer": {"id": "b"},
    "seller": {"id": "s"},
    "currency": "RUB",
}


@pytest.mark.parametrize("amount", [0, 0.0, "0", "0.00"])
def test_a_fully_discounted_order_is_valid(amount: object) -> None:
    assert Order.model_validate({**BASE, "amount": amount}).amount == 0.0


@pytest.mark.parametrize("amount", [-0.01, -5, 1e-300, 0.004, 0.0099])
def test_negative_and_sub_minor_unit_amounts_are_refused_naming_the_amount(amount: float) -> None:
    with pytest.raises(ValidationError) as error:
        Order.model_validate({**BASE, "amount": amount})
    assert [e["loc"] for e in error.value.errors()] == [("amount",)]


def test_the_published_schema_allows_zero() -> None:
    amount = Order.model_json_schema()["properties"]["amount"]
    assert amount["minimum"] == 0
    assert "fully discounted" in amount["description"]


def zero_then_paid() -> list[Order]:
    """A buyer and seller whose first orders are free, then a paid one, then a free one again."""
    amounts = [0.0, 0.0, 0.0, 1500.0, 0.0, 700.0]
    return [
        build_order(
            f"z{i}", T0 + timedelta(hours=i), amount=a, card="fp-z", device="d-z", email="z@example.com"
        )
        for i, a in enumerate(amounts)
    ]


def test_features_of_zero_amount_orders_are_finite_or_missing_never_infinite() -> None:
    result = replay(zero_then_paid())
    x = result.matrix

    assert not np.isinf(x).any()
    buyer_ratio = x[:, FEATURE_INDEX["amount_vs_buyer_avg_30d"]]
    seller_ratio = x[:, FEATURE_INDEX["amount_vs_seller_avg_30d"]]
    # No history, or a history worth 0 on average: the ratio is undefined (NaN), not inf.
    assert np.isnan(buyer_ratio[:4]).all() and np.isnan(seller_ratio[:4]).all()
    # A free order after a paid one is 0x the average; a paid one after it, a finite multiple.
    assert buyer_ratio[4] == 0.0
    assert buyer_ratio[5] == pytest.approx(700.0 / (1500.0 / 5))  # five orders before it
    assert x[:, FEATURE_INDEX["amount_rub"]].tolist() == [0.0, 0.0, 0.0, 1500.0, 0.0, 700.0]
    assert x[:, FEATURE_INDEX["buyer_amount_30d"]].tolist() == [0.0, 0.0, 0.0, 0.0, 1500.0, 1500.0]


def test_serving_scores_a_zero_amount_order() -> None:
    result = replay(zero_then_paid())
    model = FraudModel.load()

    scores = model.scores(result.matrix)

    assert np.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()


def test_a_history_with_zero_amounts_is_read_whole(tmp_path: Path) -> None:
    path = write_orders([o.model_dump(mode="json") for o in zero_then_paid()], tmp_path / "orders.csv")

    amounts = [o.amount for o in open_orders(path).iter_orders()]

    assert amounts == [0.0, 0.0, 0.0, 1500.0, 0.0, 700.0]

"""A seeded sliver of the 11.11 peak through the ScoreOrder and Feedback handlers on moto, with
DynamoDB's contention modelled on top (`dozor_training.fraud.peak`): a top seller's orders at
2,000 a second and chargebacks against them, whose transactions hold the seller's items."""

from __future__ import annotations

import random

from dozor_training.fraud.peak import TOP_SELLER, PeakConfig, arrivals, simulate_peak


def test_the_peak_arrives_at_the_top_sellers_rate() -> None:
    orders = arrivals(PeakConfig(window=0.5, sample=0.01), random.Random(1))
    top = [o for _, o in orders if o["seller"]["id"] == TOP_SELLER]
    assert 900 <= len(top) <= 1100  # 2,000 a second for half a second
    assert len(orders) - len(top) < len(top) / 5  # a 1 % sample of the other 18,000 a second


def test_a_peak_sliver_decides_every_order_once_through_conflicts() -> None:
    figures = simulate_peak(PeakConfig(window=0.008, sample=0.01, chargebacks_per_second=400))
    print("peak:", figures)
    # The contention happened: chargeback transactions collided with the orders' writes
    assert figures["top_seller_orders"] >= 8
    assert sum(figures["conflicts"].values()) >= 1
    # And no order failed: each answered 200, stored once, counted once, nothing left owed
    assert figures["failed_orders"] == 0, figures["failures"]
    # No item took more than DynamoDB's 1,000 write units a second
    assert figures["hottest_item_write_units_per_second"] < 1000

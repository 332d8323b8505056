"""What a scored order costs in DynamoDB writes, billed as DynamoDB bills them.

The requests are the real ones the ScoreOrder wiring sends to moto, captured with botocore hooks
(`dozor_training.fraud.bench_writes.WriteMeter`); sizes are read from the table before and after
each write. Issue 14's budget: at most 8 items and 16 write units per new order, typical or top
seller.
"""

from __future__ import annotations

from dozor_training.fraud import bench_writes
from dozor_training.fraud.bench_writes import item_size, write_units


def test_item_sizes_and_units_follow_dynamodb_billing() -> None:
    # Names and values count; numbers by significant digits; a started KB is a unit, doubled in
    # a transaction
    assert item_size({"pk": {"S": "card#ab"}, "n": {"N": "12345"}}) == 2 + 7 + 1 + 4
    assert item_size({"s": {"SS": ["abc", "de"]}, "l": {"L": [{"S": "x"}]}}) == 1 + 5 + 1 + 3 + 1 + 1
    assert [write_units(s) for s in (0, 1, 1024, 1025, 2048, 2049)] == [1, 1, 1, 2, 2, 3]
    assert write_units(1025, transactional=True) == 4


def test_a_scored_order_writes_at_most_8_items_and_16_write_units() -> None:
    # Given a Features table holding a day of simulated history, and a top seller's shard at peak
    figures = bench_writes.measure_simulated(orders=6, days=1, orders_per_day=150)
    print("write cost per order:", figures)
    # Then a typical new order writes its decision and one item per entity, no transaction
    assert figures["transactions_per_order"] == 0
    assert 6 <= figures["items_written_per_order"] <= 8
    assert figures["write_units_per_order"] <= 16
    # And so does a top seller's, whose shard holds every bucket of its windows
    assert figures["top_seller_items_written"] <= 8
    assert figures["top_seller_write_units"] <= 16
    assert figures["top_seller_item_bytes"] > figures["seller_item_bytes_typical"]
    assert figures["top_seller_item_bytes"] < 4 * 1024

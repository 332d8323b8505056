"""The simulated stack's functions take "now" from the event: a schedule's tick, an SQS batch's receipt."""

from __future__ import annotations

from datetime import UTC, datetime

from dozor_local.pollers import scheduled_event
from dozor_local.simtime import SimulatedDatetime, _Pinned, event_time

TICK = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)


def sqs_record(received_ms: int) -> dict[str, object]:
    return {"body": "{}", "attributes": {"ApproximateFirstReceiveTimestamp": str(received_ms)}}


def test_a_scheduled_event_is_at_its_tick_and_an_sqs_batch_at_its_newest_receipt() -> None:
    assert event_time(scheduled_event(TICK, region="eu-central-1", account_id="1", rule_arn="r")) == TICK
    stamps = [int(TICK.timestamp() * 1000) - 5_000, int(TICK.timestamp() * 1000)]
    assert event_time({"Records": [sqs_record(ms) for ms in stamps]}) == TICK
    # An HTTP call carries no simulated time: the function keeps the wall clock.
    assert event_time({"version": "2.0", "rawPath": "/v1/orders/score"}) is None


def test_now_is_the_pinned_time_inside_an_invocation_and_the_wall_clock_outside() -> None:
    _Pinned.now = TICK
    try:
        assert SimulatedDatetime.now(UTC) == TICK
        assert SimulatedDatetime.now() == TICK.replace(tzinfo=None)
    finally:
        _Pinned.now = None
    assert abs((SimulatedDatetime.now(UTC) - datetime.now(UTC)).total_seconds()) < 60

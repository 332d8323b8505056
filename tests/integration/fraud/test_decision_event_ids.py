"""Decision events are at least once: when publishing succeeds and striking the duty off the
decision's outbox fails, whoever finishes the outbox next publishes again. Consumers dedupe on
``detail.event_id``: the repeat carries the same id and the same detail (it is published from the
stored decision), so an idempotent consumer sees one decision per order."""

from __future__ import annotations

from typing import Any

import pytest

from dozor.handlers.fraud import score_order
from dozor.handlers.fraud.wiring import dependencies
from tests.helpers.aws_stack import Stack, api_event, make_order
from tests.helpers.faults import Faults, code, sent


@pytest.fixture
def bus(stack: Stack) -> Any:
    """The decision events on the bus since the last call (a rule delivering them to a probe queue)."""
    return stack.decision_events("decision-ids-probe")


def test_a_repeated_decision_event_carries_the_same_id_and_detail(stack: Stack, bus: Any) -> None:
    faults = Faults()
    dependencies.cache_clear()
    table = stack.table("DecisionsTable")
    throttled = code("ProvisionedThroughputExceededException")

    def no_striking_off_the_event(params: dict[str, Any], **kwargs: Any) -> Any:
        body = sent(params)
        struck = table in body and "DELETE outbox" in body and '"event"' in body
        return throttled(**kwargs) if struck else None

    order = make_order("o-ev1")
    with faults.on("before-call.dynamodb.UpdateItem", no_striking_off_the_event):
        first = score_order.lambda_handler(api_event("POST", "/v1/orders/score", order), stack.context)
    # The replay finds the event still owed and publishes it again, then strikes it off
    again = score_order.lambda_handler(api_event("POST", "/v1/orders/score", order), stack.context)
    assert first["statusCode"] == again["statusCode"] == 200
    events = [e for e in bus() if e["detail"]["order_id"] == "o-ev1"]
    assert len(events) == 2  # at least once: here twice
    assert {e["detail"]["event_id"] for e in events} == {"decision:o-ev1"}
    assert events[0]["detail"] == events[1]["detail"]
    # and once struck off, nothing more is owed: a third call publishes nothing
    score_order.lambda_handler(api_event("POST", "/v1/orders/score", order), stack.context)
    assert bus() == []

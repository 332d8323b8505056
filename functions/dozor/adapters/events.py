"""EventBridge: the decision events order management consumes (detail-type ``Dozor Decision``).

One event per stored decision, published by whoever finishes the decision's outbox (the scoring
path right after the write, or the pending-commits function); schema in README § Decision events.
"""

from __future__ import annotations

import json
from typing import Any

from dozor.adapters.aws_errors import Service, translated
from dozor.domain.contracts import Decision
from dozor.domain.errors import StoreUnavailableError

EVENTS = Service("events", invalid=frozenset({"ValidationException"}))
SOURCE = "dozor.fraud"
DETAIL_TYPE = "Dozor Decision"
SCHEMA_VERSION = "1"


def decision_detail(decision: Decision) -> dict[str, Any]:
    """The event's ``detail``: the decision as the API returns it, with an id consumers dedupe on."""
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": f"decision:{decision.order_id}",
        **decision.model_dump(mode="json"),
    }


class EventBridgeDecisionEvents:
    """Implements `dozor.domain.fraud.scoring.DecisionEvents` on an event bus."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self._bus = bus_name

    def publish(self, decision: Decision) -> None:
        entry = {
            "Source": SOURCE,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(decision_detail(decision)),
            "EventBusName": self._bus,
            "Resources": [],
        }
        with translated(EVENTS, f"decision event of {decision.order_id} not published"):
            response = self._client.put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            code = response["Entries"][0].get("ErrorCode", "unknown")
            raise StoreUnavailableError(f"decision event of {decision.order_id} not published: {code}")

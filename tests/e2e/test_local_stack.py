"""End to end: the local stack driven over HTTP and SQS, as a checkout and the order bus would."""

from __future__ import annotations

import http.client
import json
import time
from datetime import timedelta
from typing import Any

import boto3
import pytest

from dozor_local.server import LocalServer
from tests.e2e.conftest import SIM_START
from tests.integration.conftest import make_order

pytestmark = pytest.mark.e2e


def post(local: LocalServer, path: str, body: Any) -> tuple[int, Any]:
    return request(local, "POST", path, json.dumps(body))


def request(local: LocalServer, method: str, path: str, body: str | None = None) -> tuple[int, Any]:
    host, port = local.api_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request(method, path, body=body, headers={"content-type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def feature(local: LocalServer, pk: str, sk: str) -> dict[str, Any]:
    table = boto3.resource("dynamodb", endpoint_url=local.endpoint_url, region_name=local.stack.region).Table(
        local.stack.physical_id("FeaturesTable")
    )
    return dict(table.get_item(Key={"pk": pk, "sk": sk}).get("Item", {}))


def decided(local: LocalServer, order_id: str) -> bool:
    table = local.stack.physical_id("DecisionsTable")
    return "Item" in local.client("dynamodb").get_item(TableName=table, Key={"order_id": {"S": order_id}})


def test_checkout_gets_a_decision_over_http_and_can_read_it_back(local: LocalServer) -> None:
    status, decision = post(local, "/v1/orders/score", make_order("e2e-read-1", buyer_id="b-e2e-read"))
    assert status == 200
    assert decision["decision"] in {"APPROVE", "REVIEW", "DECLINE"}
    status, stored = request(local, "GET", "/v1/orders/e2e-read-1/decision")
    assert (status, stored) == (200, decision)
    assert request(local, "GET", "/v1/orders/e2e-never-seen/decision")[0] == 404


def test_invalid_order_is_422_naming_the_field_and_unknown_route_is_404(local: LocalServer) -> None:
    order = make_order("e2e-invalid-1")
    del order["buyer"]["id"]
    status, body = post(local, "/v1/orders/score", order)
    assert status == 422
    assert "buyer.id" in {e["field"] for e in body["errors"]}
    assert request(local, "GET", "/v1/nothing-here") == (404, {"message": "Not Found"})
    assert request(local, "DELETE", "/v1/orders/score") == (404, {"message": "Not Found"})


def test_stolen_card_burst_is_declined(local: LocalServer) -> None:
    """One card, several fresh buyers within minutes: the third buyer on the card is declined."""
    answers = []
    for n in range(4):
        order = make_order(
            f"e2e-burst-{n}", buyer_id=f"b-e2e-burst-{n}", minutes_later=n, card="fp-stolen-e2e"
        )
        status, decision = post(local, "/v1/orders/score", order)
        assert status == 200
        answers.append(decision)
    assert answers[0]["decision"] != "DECLINE"
    assert answers[-1]["decision"] == "DECLINE"
    assert "CARD_SHARED_BY_BUYERS" in answers[-1]["rules"]


def test_replayed_order_returns_the_first_decision_and_counts_once(local: LocalServer) -> None:
    order = make_order("e2e-replay-1", buyer_id="b-e2e-replay", card="fp-e2e-replay")
    first = post(local, "/v1/orders/score", order)
    second = post(local, "/v1/orders/score", order)
    assert first[0] == second[0] == 200
    assert second[1] == first[1]
    assert feature(local, "buyer#b-e2e-replay", "P")["orders"] == 1
    # The same order arriving again from the order bus is not counted either.
    local.send("OrderEventsQueue", order)
    assert local.wait_idle(30)
    assert feature(local, "buyer#b-e2e-replay", "P")["orders"] == 1


def test_poison_message_lands_in_the_dlq_while_its_batch_mates_are_decided_once(local: LocalServer) -> None:
    dlq = local.stack.queue_url("OrderEventsDLQ")
    sqs = local.client("sqs")
    before = local.queue_depth("OrderEventsDLQ")
    orders = [
        make_order(f"e2e-batch-{n}", buyer_id=f"b-e2e-batch-{n}", card=f"fp-e2e-batch-{n}") for n in range(6)
    ]
    poison = '{"order_id": "e2e-poison", "amount": "lots"}'
    local.send_batch("OrderEventsQueue", [*orders[:3], poison, *orders[3:]])
    assert local.wait_idle(60)
    assert local.queue_depth("OrderEventsDLQ") == before + 1
    bodies = []
    for _ in range(before + 1):
        for message in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", []):
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
    assert poison in bodies
    for n, order in enumerate(orders):
        assert decided(local, order["order_id"])
        # Decided once: the batch was retried for the poison record, the others were not recounted.
        assert feature(local, f"buyer#b-e2e-batch-{n}", "P")["orders"] == 1


def test_silent_parcel_raises_a_stalled_alert_on_the_topic(local: LocalServer) -> None:
    if "ShipmentEventsFunction" not in local.stack.functions:
        pytest.skip(
            "the shipments functions (ShipmentEventsFunction, ParcelSweeperFunction) are not in template.yaml"
        )
    scan = {
        "event_id": "e2e-scan-1",
        "parcel_id": "e2e-parcel-1",
        "order_id": "e2e-parcel-order-1",
        "carrier": "CDEK",
        "status": "INFO_RECEIVED",
        "occurred_at": SIM_START.isoformat(),
        "location": {"country": "CN", "region": "CN-GD", "facility": "Shenzhen sorting centre"},
    }
    local.send("ShipmentEventsQueue", scan)
    assert local.wait_idle(30)
    local.advance_clock(local.clock.now() + timedelta(days=20))
    assert local.wait_idle(30)
    alerts: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(a.get("parcel_id") == "e2e-parcel-1" for a in alerts):
        alerts += [json.loads(n["Message"]) for n in local.read_ops_alerts(wait_seconds=1)]
    stalled = [a for a in alerts if a.get("parcel_id") == "e2e-parcel-1"]
    assert stalled
    assert stalled[0]["type"] == "STALLED"

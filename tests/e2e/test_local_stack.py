"""End to end: the local stack driven over HTTP and SQS, as a checkout and the order bus would."""

from __future__ import annotations

import http.client
import json
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.model import PACKAGED_PARCEL_MODEL_DIR
from dozor.domain.parcels.shipments import ParcelStatus, ShipmentEvent, apply_scans
from dozor_local.auth import sign
from dozor_local.server import LocalServer
from tests.helpers.aws_stack import make_order

pytestmark = pytest.mark.e2e


def post(local: LocalServer, path: str, body: Any) -> tuple[int, Any]:
    return request(local, "POST", path, json.dumps(body))


def request(
    local: LocalServer, method: str, path: str, body: str | None = None, *, signed: bool = True
) -> tuple[int, Any]:
    """A checkout's call: SigV4-signed with the local principal, as a caller in AWS signs it."""
    host, port = local.api_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"content-type": "application/json"}
    data = (body or "").encode()
    if signed:
        headers = sign(method, local.api_url + path, data, headers, region=local.stack.region)
    try:
        connection.request(method, path, body=data or None, headers=headers)
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


def test_functions_write_to_the_dynamodb_emulator_that_the_main_endpoint_forwards_to(
    local: LocalServer,
) -> None:
    status, decision = post(local, "/v1/orders/score", make_order("e2e-split-1", buyer_id="b-e2e-split"))
    assert status == 200
    table = local.stack.resources["DecisionsTable"].ref
    key = {"order_id": {"S": "e2e-split-1"}}
    region = local.stack.region
    direct = boto3.client("dynamodb", endpoint_url=local.dynamodb_endpoint_url, region_name=region)
    forwarded = local.client("dynamodb")
    stored = direct.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert forwarded.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"] == stored
    assert json.loads(stored["decision"]["S"])["decision"] == decision["decision"]
    # The DynamoDB process holds the tables alone; the queues are the main one's.
    sqs = boto3.client("sqs", endpoint_url=local.dynamodb_endpoint_url, region_name=region)
    assert not sqs.list_queues().get("QueueUrls")
    assert local.client("sqs").list_queues()["QueueUrls"]


def test_every_route_but_the_docs_needs_a_signature_as_deployed(local: LocalServer) -> None:
    body = json.dumps(make_order("e2e-unsigned-1"))
    for method, path, payload in [
        ("POST", "/v1/orders/score", body),
        ("GET", "/v1/orders/e2e-unsigned-1/decision", None),
        ("GET", "/v1/nothing-here", None),
    ]:
        assert request(local, method, path, payload, signed=False) == (403, {"message": "Forbidden"})
    assert not decided(local, "e2e-unsigned-1")
    assert request(local, "GET", "/v1/openapi.json", signed=False)[0] == 200


def test_invalid_order_is_422_naming_the_field_and_unknown_route_is_404(local: LocalServer) -> None:
    order = make_order("e2e-invalid-1")
    del order["buyer"]["id"]
    status, body = post(local, "/v1/orders/score", order)
    assert status == 422
    assert "buyer.id" in {e["field"] for e in body["error"]["fields"]}
    for method, path in [("GET", "/v1/nothing-here"), ("DELETE", "/v1/orders/score")]:
        status, body = request(local, method, path)
        assert (status, body["error"]["code"]) == (404, "not_found")


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


def test_poison_message_is_quarantined_while_its_batch_mates_are_decided_once(local: LocalServer) -> None:
    quarantine = local.stack.queue_url("QuarantineQueue")
    sqs = local.client("sqs")
    before = local.queue_depth("OrderEventsDLQ")
    orders = [
        make_order(f"e2e-batch-{n}", buyer_id=f"b-e2e-batch-{n}", card=f"fp-e2e-batch-{n}") for n in range(6)
    ]
    poison = '{"order_id": "e2e-poison", "amount": "lots", "buyer": {"id": "b-x", "email": "x@mail.ru"}}'
    local.send_batch("OrderEventsQueue", [*orders[:3], poison, *orders[3:]])
    assert local.wait_idle(60)
    # Acknowledged, not redriven: the DLQ is unchanged and the quarantine holds a masked copy
    assert local.queue_depth("OrderEventsDLQ") == before
    held = []
    while messages := sqs.receive_message(QueueUrl=quarantine, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            held.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=quarantine, ReceiptHandle=message["ReceiptHandle"])
    mine = [q for q in held if q["masked"].get("order_id") == "e2e-poison"]
    assert len(mine) == 1 and mine[0]["masked"]["buyer"]["email"] == "***" and mine[0]["reason"]
    for n, order in enumerate(orders):
        assert decided(local, order["order_id"])
        assert feature(local, f"buyer#b-e2e-batch-{n}", "P")["orders"] == 1


HEARTBEAT = timedelta(hours=4)  # under the 6 hours after which a quiet feed counts as down


def _parcel_alerts(local: LocalServer, parcel_id: str) -> list[dict[str, Any]]:
    """The alerts on the ops queue for one parcel (the topic's notifications carry the Alert JSON)."""
    alerts: list[dict[str, Any]] = []
    while batch := local.read_ops_alerts():
        alerts += [json.loads(n["Message"]) for n in batch]
    return [a for a in alerts if a["parcel_id"] == parcel_id]


def test_silent_parcel_raises_a_stalled_alert_after_its_lane_deadline(local: LocalServer) -> None:
    """One scan, then silence: the hourly sweeper raises STALLED at its first tick past the deadline."""
    scanned_at = local.clock.now()
    scan = {
        "event_id": "e2e-scan-1",
        "parcel_id": "e2e-parcel-1",
        "order_id": "e2e-parcel-order-1",
        "carrier": "cdek",
        "status": "INFO_RECEIVED",
        "occurred_at": scanned_at.isoformat(),
        "location": {"country": "CN", "region": None, "facility": "Shenzhen sorting centre"},
        "origin_country": "CN",
        "destination_region": "RU-MOW",
    }
    deadlines = LaneDeadlines.load(PACKAGED_PARCEL_MODEL_DIR)
    lane = apply_scans(None, [ShipmentEvent.model_validate(scan)], deadlines).lane
    stalled_at = scanned_at + deadlines.stalled_after(lane, ParcelStatus.INFO_RECEIVED)
    local.send("ShipmentEventsQueue", scan)
    # The carrier keeps reporting its other parcels: the silence is this parcel's, not a feed outage.
    moment, beat = scanned_at, 0
    while moment < stalled_at + timedelta(hours=1):
        moment = min(moment + HEARTBEAT, stalled_at + timedelta(hours=1))
        beat += 1
        local.advance_clock(moment)
        heartbeat = {**scan, "event_id": f"e2e-busy-{beat}", "parcel_id": "e2e-busy-parcel"}
        local.send("ShipmentEventsQueue", {**heartbeat, "occurred_at": moment.isoformat()})
        assert local.wait_idle(30)
        if moment < stalled_at:
            # judged at the simulated time the scans arrived and swept: nothing is late yet
            assert _parcel_alerts(local, "e2e-parcel-1") == []
    assert local.wait_idle(30)
    alerts = _parcel_alerts(local, "e2e-parcel-1")
    assert [a["type"] for a in alerts] == ["STALLED"]
    raised_at = datetime.fromisoformat(alerts[0]["raised_at"])
    assert stalled_at < raised_at <= stalled_at + timedelta(hours=1)  # the first hourly sweep past it
    assert datetime.fromisoformat(alerts[0]["last_scan_at"]) == scanned_at
    assert alerts[0]["lane"] == lane.key()
    assert alerts[0]["resolved_at"] is None
    # ShipmentEventsFunction noted the carrier's feed at the simulated time its last scan arrived.
    feed = local.client("dynamodb").get_item(
        TableName=local.stack.physical_id("ShipmentsTable"), Key={"parcel_id": {"S": "#feed#cdek"}}
    )["Item"]
    assert int(feed["last_heard"]["N"]) == int(moment.timestamp())

"""Carrier scans through ShipmentEventsFunction on moto: order-independent parcel state, poison
records, conditional writes under concurrency, carrier-exception alerts and parcel outcomes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from dozor.adapters.dynamodb.decisions import DynamoDecisionStore
from dozor.adapters.dynamodb.parcels import DynamoCarrierFeeds
from dozor.domain.contracts import Decision, DecisionKind, RiskLevel
from dozor.domain.fraud.scoring import PendingCommit
from dozor.handlers.parcels import shipment_events
from dozor_local.event_source import deliver_once
from dozor_local.invoke import invoke_handler
from tests.helpers.faults import Faults, sent
from tests.helpers.shipments import (
    EVENTS,
    ParcelStack,
    hours_ago,
    parcel_model_dir,
    parcel_stack,
    scan,
    sqs_event,
)

__all__ = ["parcel_model_dir", "parcel_stack"]  # fixtures


def _handle(stack: ParcelStack, event: dict[str, Any]) -> list[str]:
    result = shipment_events.lambda_handler(event, stack.context())
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


def test_sample_batch_builds_the_parcel_whatever_the_order_and_quarantines_the_poison_record(
    parcel_stack: ParcelStack,
) -> None:
    # Given the sample batch: scans out of order, one sent twice, an EXCEPTION, one malformed record
    event = json.loads((EVENTS / "sqs_shipment_events.json").read_text())
    poison = event["Records"][-1]["messageId"]

    # When the function handles it
    failures = _handle(parcel_stack, event)

    # Then the malformed record is quarantined (not failed); the parcel is in customs with three scans
    assert failures == []
    assert [q["body"]["message_id"] for q in parcel_stack.drain("QuarantineQueue")] == [poison]
    parcel = parcel_stack.parcel("LP00712345678RU")
    assert parcel["status"] == "CUSTOMS"
    assert [s["event_id"] for s in parcel["scans"]] == ["cn-scan-0001", "cn-scan-0002", "cn-scan-0003"]
    assert parcel["lane"] == "CAINIAO|CN|RU-NVS"
    item = parcel_stack.parcel_item("LP00712345678RU")
    assert item["due_shard"]["S"].startswith("due#") and int(item["due_at"]["N"]) > 0
    # and the carrier's EXCEPTION became one alert, in the table, on the topic and on the queue
    alerts = parcel_stack.drain("AlertsQueue")
    assert [
        (a["body"]["parcel_id"], a["body"]["type"])
        for a in alerts
        if a["attributes"]["type"] == "CARRIER_EXCEPTION"
    ] == [("LP00798765432RU", "CARRIER_EXCEPTION")]
    exception = next(a for a in alerts if a["body"]["type"] == "CARRIER_EXCEPTION")
    assert exception["attributes"] == {
        "event": "RAISED",
        "type": "CARRIER_EXCEPTION",
        "severity": exception["body"]["severity"],
        "carrier": "CAINIAO",
        "region": "RU-PRI",
    }
    assert "EXCEPTION" in exception["body"]["message"]


def test_a_replayed_batch_changes_nothing_and_raises_no_second_alert(parcel_stack: ParcelStack) -> None:
    event = json.loads((EVENTS / "sqs_shipment_events.json").read_text())
    _handle(parcel_stack, event)
    before = parcel_stack.parcel_item("LP00712345678RU")
    first = parcel_stack.drain("AlertsQueue")
    alerts_before = parcel_stack.alert_items()

    _handle(parcel_stack, event)

    assert parcel_stack.parcel_item("LP00712345678RU") == before
    assert parcel_stack.drain("AlertsQueue") == []
    assert parcel_stack.alert_items() == alerts_before
    assert first


def test_poison_scan_is_quarantined_and_good_scans_are_applied_once(parcel_stack: ParcelStack) -> None:
    # Given a queue holding four scans of one parcel and one record that is not a scan
    sqs = boto3.client("sqs")
    queue = parcel_stack.local.queue_url("ShipmentEventsQueue")
    dlq = parcel_stack.local.queue_url("ShipmentEventsDLQ")
    bodies = [
        json.dumps(scan("LP-1", status, hours_ago(h)))
        for status, h in (("INFO_RECEIVED", 80), ("IN_TRANSIT", 60), ("CUSTOMS", 30), ("OUT_FOR_DELIVERY", 5))
    ]
    bodies.insert(2, '{"parcel_id": "LP-1", "status": "IN_TRANSIT"}')
    for body in reversed(bodies):  # newest first: the worst order
        sqs.send_message(QueueUrl=queue, MessageBody=body)

    # When the poller delivers until the queue is empty (visibility 0: redelivery is immediate)
    deliveries = []
    for _ in range(10):
        delivery = deliver_once(
            sqs, queue, shipment_events.lambda_handler, parcel_stack.context(), visibility_timeout=0
        )
        if not delivery.received:
            break
        deliveries.append(delivery)

    # Then the parcel went through its four scans once, and the poison record is quarantined
    # (acknowledged, masked, with its reason), not redelivered into the DLQ
    parcel = parcel_stack.parcel("LP-1")
    assert parcel["status"] == "OUT_FOR_DELIVERY" and len(parcel["scans"]) == 4
    assert parcel["version"] == 1  # one batch, one write
    assert [(d.received, len(d.failed)) for d in deliveries] == [(5, 0)]
    assert sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", []) == []
    quarantined = [m["body"] for m in parcel_stack.drain("QuarantineQueue")]
    assert [q["masked"] for q in quarantined] == [{"parcel_id": "LP-1", "status": "IN_TRANSIT"}]


def test_a_concurrent_write_between_read_and_write_is_re_read_and_both_scans_survive(
    parcel_stack: ParcelStack,
) -> None:
    # Given a parcel in transit, and another batch that will write it between our read and our write
    other_batch = sqs_event([json.dumps(scan("LP-2", "CUSTOMS", hours_ago(20)))])
    raced: list[bool] = []

    def another_batch_writes_first(params: dict[str, Any], **_: Any) -> None:
        if not raced and ":expected" in params.get("ExpressionAttributeValues", {}):
            raced.append(True)
            _handle(parcel_stack, other_batch)

    # Registered before the handlers build their clients, which copy the session's hooks.
    boto3._get_default_session().events.register(
        "before-parameter-build.dynamodb.UpdateItem", another_batch_writes_first
    )
    _handle(parcel_stack, sqs_event([json.dumps(scan("LP-2", "IN_TRANSIT", hours_ago(50)))]))

    # When our batch brings a later scan
    failures = _handle(parcel_stack, sqs_event([json.dumps(scan("LP-2", "OUT_FOR_DELIVERY", hours_ago(2)))]))

    # Then our write lost the race, re-read the parcel, re-applied, and no scan was lost
    assert raced and failures == []
    parcel = parcel_stack.parcel("LP-2")
    assert [s["status"] for s in parcel["scans"]] == ["IN_TRANSIT", "CUSTOMS", "OUT_FOR_DELIVERY"]
    assert parcel["status"] == "OUT_FOR_DELIVERY" and parcel["version"] == 3


def test_delivery_reports_the_outcome_resolves_open_alerts_and_leaves_the_due_index(
    parcel_stack: ParcelStack,
) -> None:
    # Given a parcel the carrier reported in EXCEPTION (an open alert)
    _handle(parcel_stack, sqs_event([json.dumps(scan("LP-3", "EXCEPTION", hours_ago(30)))]))
    assert [a["attributes"]["event"] for a in parcel_stack.drain("AlertsQueue")] == ["RAISED"]

    # When it is delivered (and the delivery scan arrives twice)
    delivered = json.dumps(scan("LP-3", "DELIVERED", hours_ago(1)))
    assert _handle(parcel_stack, sqs_event([delivered, delivered])) == []
    _handle(parcel_stack, sqs_event([delivered]))

    # Then the alert resolved itself, once, and said so on the topic
    resolved = parcel_stack.drain("AlertsQueue")
    assert [(a["attributes"]["event"], a["body"]["type"]) for a in resolved] == [
        ("RESOLVED", "CARRIER_EXCEPTION")
    ]
    assert resolved[0]["body"]["resolved_at"] is not None
    (alert,) = parcel_stack.alert_items()
    assert alert["alert_state"]["S"] == "RESOLVED" and "open_type" not in alert
    # and the fraud side hears of the delivery once
    feedback = parcel_stack.drain("FeedbackQueue")
    assert [(f["body"]["kind"], f["body"]["parcel_id"], f["body"]["order_id"]) for f in feedback] == [
        ("delivered", "LP-3", "ord-LP-3")
    ]
    # and the parcel left the sweeper's index and will expire
    item = parcel_stack.parcel_item("LP-3")
    assert "due_shard" not in item and "due_at" not in item and "expires_at" in item
    assert not item.get("outbox")


def test_a_lost_parcel_is_reported_as_a_loss_label(parcel_stack: ParcelStack) -> None:
    _handle(parcel_stack, sqs_event([json.dumps(scan("LP-4", "IN_TRANSIT", hours_ago(200)))]))
    _handle(parcel_stack, sqs_event([json.dumps(scan("LP-4", "LOST", hours_ago(3)))]))

    feedback = parcel_stack.drain("FeedbackQueue")
    assert [(f["body"]["kind"], f["attributes"]["kind"]) for f in feedback] == [("lost", "lost")]
    types = {(a["body"]["type"], a["attributes"]["severity"]) for a in parcel_stack.drain("AlertsQueue")}
    assert ("CARRIER_EXCEPTION", "HIGH") in types


def test_a_new_parcel_keeps_its_orders_fraud_score_read_in_one_batch(parcel_stack: ParcelStack) -> None:
    # Given one of two orders was scored at checkout
    decisions = DynamoDecisionStore(
        boto3.client("dynamodb"), parcel_stack.table("FeaturesTable"), parcel_stack.table("DecisionsTable")
    )
    decision = Decision(
        order_id="ord-LP-5",
        decision=DecisionKind.APPROVE,
        score=0.125,
        risk_level=RiskLevel.LOW,
        reasons=[],
        rules=[],
        model_version="fraud-test",
        decided_at=datetime.now(UTC),
    )
    decisions.commit(PendingCommit(decision))
    parcel_stack.calls.clear()

    # When the first scans of both orders' parcels arrive in one batch
    bodies = [json.dumps(scan(pid, "INFO_RECEIVED", hours_ago(3))) for pid in ("LP-5", "LP-6")]
    assert _handle(parcel_stack, sqs_event(bodies)) == []
    dynamodb_calls = [name for service, name in parcel_stack.calls if service == "dynamodb"]

    # Then the scored order's parcel carries its score and the other none, from one decision read
    assert parcel_stack.parcel("LP-5")["order_fraud_score"] == 0.125
    assert parcel_stack.parcel("LP-6")["order_fraud_score"] is None
    # (parcels, the carrier's feed note, decisions, then one write per parcel)
    assert dynamodb_calls == ["BatchGetItem", "UpdateItem", "BatchGetItem", "UpdateItem", "UpdateItem"]


def test_invoked_as_dozor_invoke_does_it_quarantines_exactly_the_malformed_sample_record(
    parcel_stack: ParcelStack, parcel_model_dir: Path
) -> None:
    event = json.loads((EVENTS / "sqs_shipment_events.json").read_text())

    # dozor invoke's machinery, in-process: the function's own Lambda environment and context
    invocation = invoke_handler(
        parcel_stack.local,
        "ShipmentEventsFunction",
        event,
        env_overrides={"PARCEL_MODEL_DIR": str(parcel_model_dir)},
    )

    assert invocation.ok, invocation.error
    assert invocation.result == {"batchItemFailures": []}  # the malformed record is quarantined
    quarantined = parcel_stack.drain("QuarantineQueue")
    assert [q["body"]["message_id"] for q in quarantined] == [event["Records"][-1]["messageId"]]


def test_an_alert_whose_publish_failed_is_published_when_the_record_is_retried(
    parcel_stack: ParcelStack,
) -> None:
    # Given the topic fails once (registered before the handlers build their clients)
    failures_left = [1]

    def topic_down_once(**_: Any) -> None:
        if failures_left[0]:
            failures_left[0] -= 1
            raise ClientError({"Error": {"Code": "InternalError", "Message": "try again"}}, "Publish")

    boto3._get_default_session().events.register("before-call.sns.Publish", topic_down_once)
    event = sqs_event(
        [
            json.dumps(scan("LP-7", "EXCEPTION", hours_ago(2))),
            json.dumps(scan("LP-8", "IN_TRANSIT", hours_ago(2))),
        ]
    )

    # When the carrier's EXCEPTION scan is handled, and the queue redelivers the failed record
    first = _handle(parcel_stack, event)
    waiting = parcel_stack.parcel_item("LP-7")["outbox"]["SS"]
    published_meanwhile = parcel_stack.drain("AlertsQueue")
    second = _handle(parcel_stack, event)

    # Then the first attempt stored the alert and its outbox entry but reported the record failed,
    # and the retry published it once and cleared the outbox
    assert first == [event["Records"][0]["messageId"]] and second == []
    assert waiting == ["RAISED:CARRIER_EXCEPTION"] and published_meanwhile == []
    assert [a["body"]["type"] for a in parcel_stack.drain("AlertsQueue")] == ["CARRIER_EXCEPTION"]
    assert "outbox" not in parcel_stack.parcel_item("LP-7")


def test_scans_back_filled_after_a_carrier_outage_raise_no_stall_but_a_silent_parcel_does(
    parcel_stack: ParcelStack,
) -> None:
    # Given CAINIAO's feed went quiet 40 hours ago (its last scans arrived then)
    feeds = DynamoCarrierFeeds(boto3.client("dynamodb"), parcel_stack.table("ShipmentsTable"))
    feeds.heard_from({"CAINIAO"}, datetime.now(UTC) - timedelta(hours=40))

    # When the feed comes back with a scan made 100 hours ago (past the 96-hour deadline)
    assert _handle(parcel_stack, sqs_event([json.dumps(scan("LP-9", "IN_TRANSIT", hours_ago(100)))])) == []
    # and a 100-hour-old scan of another carrier's parcel arrives, that carrier's feed never down
    other = scan("LP-10", "IN_TRANSIT", hours_ago(100)) | {"carrier": "YANWEN"}
    assert _handle(parcel_stack, sqs_event([json.dumps(other)])) == []

    # Then only the parcel that was silent while its carrier's feed was live is STALLED
    raised = [(a["body"]["parcel_id"], a["body"]["type"]) for a in parcel_stack.drain("AlertsQueue")]
    assert raised == [("LP-10", "STALLED")]
    (gap,) = feeds.gaps("CAINIAO", datetime.now(UTC))
    assert timedelta(hours=39) < gap.end - gap.start < timedelta(hours=41)


def test_a_batch_that_fails_whole_is_applied_parcel_by_parcel_and_only_the_failing_parcel_is_retried(
    parcel_stack: ParcelStack,
) -> None:
    # Given a store that fails, with an error the tracking service does not expect, every request
    # naming one parcel (LP-BAD): the batched read for the whole batch fails with it
    faults = Faults()  # hooked before the handler builds its clients

    def lp_bad_breaks(params: dict[str, Any], **_: Any) -> None:
        if "LP-BAD" in sent(params):
            raise RuntimeError("injected: an unexpected failure on LP-BAD")

    good = [
        json.dumps(scan("LP-GOOD", status, hours_ago(h)))
        for status, h in (("IN_TRANSIT", 30), ("CUSTOMS", 10))
    ]
    bad = [json.dumps(scan("LP-BAD", "IN_TRANSIT", hours_ago(20)))]
    event = sqs_event(good + bad)
    bad_ids = [r["messageId"] for r in event["Records"][len(good) :]]

    # When the batch arrives
    with faults.on("before-call.dynamodb.*", lp_bad_breaks):
        failures = _handle(parcel_stack, event)

    # Then each parcel was applied alone: LP-GOOD's scans are stored once, and only LP-BAD's
    # record is reported failed, to be redelivered
    assert failures == bad_ids
    parcel = parcel_stack.parcel("LP-GOOD")
    assert [s["status"] for s in parcel["scans"]] == ["IN_TRANSIT", "CUSTOMS"] and parcel["version"] == 1
    assert "parcel" not in parcel_stack.parcel_item("LP-BAD")  # nothing stored: its scan comes again

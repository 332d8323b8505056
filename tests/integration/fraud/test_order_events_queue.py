"""Order events through the real queue: partial failures, redelivery and the DLQ redrive."""

from __future__ import annotations

import json

import boto3

from dozor.handlers.fraud import order_events
from dozor_local.event_source import deliver_once
from tests.helpers.aws_stack import Stack, make_order


def test_poison_event_is_quarantined_and_good_events_are_processed_once(stack: Stack) -> None:
    # Given a queue holding four good orders and one that can never be scored
    sqs = boto3.client("sqs")
    queue, dlq = stack.local.queue_url("OrderEventsQueue"), stack.local.queue_url("OrderEventsDLQ")
    bodies = [json.dumps(make_order(f"o-90{i}", minutes_later=i)) for i in range(4)]
    bodies.insert(1, '{"order_id": "o-poison", "created_at": "not a date"}')
    for body in bodies:
        sqs.send_message(QueueUrl=queue, MessageBody=body)

    # When the poller delivers until the queue is empty (visibility 0: redelivery is immediate)
    deliveries = []
    for _ in range(10):
        delivery = deliver_once(sqs, queue, order_events.lambda_handler, stack.context, visibility_timeout=0)
        if not delivery.received:
            break
        deliveries.append(delivery)

    # Then the good orders were decided once, and the poison record was acknowledged at once:
    # not redelivered, not in the DLQ, but quarantined with its reason
    assert stack.decision_count() == 4
    assert [(d.received, len(d.failed)) for d in deliveries] == [(5, 0)]
    assert sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", []) == []
    quarantined = stack.drain("QuarantineQueue")
    assert [q["masked"]["order_id"] for q in quarantined] == ["o-poison"]
    assert "created_at" in quarantined[0]["reason"]
    assert stack.feature_item("seller#s-shenzhen-42", "P")["orders"] == 4


def test_a_transient_failure_still_redrives_to_the_dlq(stack: Stack) -> None:
    sqs = boto3.client("sqs")
    queue, dlq = stack.local.queue_url("OrderEventsQueue"), stack.local.queue_url("OrderEventsDLQ")
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(make_order("o-9100")))

    def unavailable(**_: object) -> tuple[object, dict]:
        error = {"Error": {"Code": "InternalServerError", "Message": "down"}}
        return type("Response", (), {"status_code": 500, "headers": {}})(), error

    session = boto3._get_default_session()
    session.events.register_first("before-call.dynamodb.BatchGetItem", unavailable)
    try:
        for _ in range(5):
            if not deliver_once(
                sqs, queue, order_events.lambda_handler, stack.context, visibility_timeout=0
            ).received:
                break
    finally:
        session.events.unregister("before-call.dynamodb.BatchGetItem", unavailable)
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["order_id"] for m in dead] == ["o-9100"]
    assert stack.drain("QuarantineQueue") == []

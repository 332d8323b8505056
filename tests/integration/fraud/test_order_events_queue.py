"""Order events through the real queue: partial failures, redelivery and the DLQ redrive."""

from __future__ import annotations

import json

import boto3

from dozor.handlers.fraud import order_events
from dozor_local.event_source import deliver_once
from tests.helpers.aws_stack import Stack, make_order


def test_poison_event_ends_in_dlq_and_good_events_are_processed_once(stack: Stack) -> None:
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

    # Then the good orders were decided once, and the poison record was retried up to
    # maxReceiveCount and moved to the DLQ by the queue's redrive policy
    assert stack.decision_count() == 4
    assert deliveries[0].received == 5 and len(deliveries[0].failed) == 1
    assert all(d.received == 1 for d in deliveries[1:])
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["order_id"] for m in dead] == ["o-poison"]
    assert stack.feature_item("seller#s-shenzhen-42", "P")["orders"] == 4

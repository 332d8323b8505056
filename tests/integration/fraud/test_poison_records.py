"""Poison isolation in the fraud queue functions: whatever breaks one record fails it alone.

Each batch holds valid records and one poison record of each kind: a body that is not JSON, a
body that is not the contract, dates at datetime's edges (years 1 and 9999) and a day ahead of
now, an order the model cannot score, an order whose write the store refuses. Their batch-mates
are decided (or recorded) exactly once. Records that can never be processed are quarantined
(a masked copy with the reason; the record is acknowledged); the others fail and are redelivered.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from dozor.domain.fraud import features
from dozor.handlers.fraud import feedback, order_events
from dozor.handlers.fraud.wiring import feedback_recorder
from tests.helpers.aws_stack import Stack, make_order, sqs_event


def _with_created_at(order_id: str, created_at: str) -> str:
    return json.dumps({**make_order(order_id), "created_at": created_at})


ORDER_POISONS: dict[str, str] = {
    "not json": '{"order_id": "o-p1", ',
    "not an order": '{"order_id": "o-p2", "amount": "lots"}',
    "year 1": _with_created_at("o-p3", "0001-01-01T00:00:00+05:00"),
    "year 9999": _with_created_at("o-p4", "9999-12-31T23:59:59-05:00"),
    "a week ahead": _with_created_at("o-p5", (datetime.now(UTC) + timedelta(days=7)).isoformat()),
    "account from year 1": json.dumps(
        {**make_order("o-p6"), "buyer": {"id": "b-x", "account_created_at": "0001-01-01T00:00:00Z"}}
    ),
}


def _failed(result: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


def test_each_poison_order_is_quarantined_alone_and_its_batch_mates_are_decided_once(stack: Stack) -> None:
    bodies = [json.dumps(make_order(f"o-50{i}", minutes_later=i)) for i in range(4)]
    bodies += list(ORDER_POISONS.values())
    event = sqs_event(bodies)
    failed = _failed(order_events.lambda_handler(event, stack.context))
    assert failed == []
    assert stack.decision_count() == 4
    assert stack.feature_item("seller#s-shenzhen-42", "P")["orders"] == 4
    quarantined = stack.drain("QuarantineQueue")
    assert [q["message_id"] for q in quarantined] == [r["messageId"] for r in event["Records"][4:]]
    assert all(q["source"] == "order-events" and q["reason"] for q in quarantined)
    assert "created_at" in quarantined[2]["reason"] and "year 1 " in quarantined[2]["reason"]
    text = json.dumps(quarantined)
    for personal in ("yandex.ru", "+7916", "95.165.10.20", "Tverskaya", "fp-4f2a9c"):
        assert personal not in text
    assert quarantined[0]["masked"]["not_json"] is True


def _fail_for(order_id: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def compute(view: features.OrderView) -> Any:
        if view.order.order_id == order_id:
            raise FloatingPointError("the model's input cannot be built")
        return original(view)

    return compute


def test_an_order_the_model_cannot_score_fails_alone(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(features, "compute", _fail_for("o-bad-model", features.compute))
    bodies = [json.dumps(make_order(f"o-51{i}", minutes_later=i)) for i in range(3)]
    bodies.insert(1, json.dumps(make_order("o-bad-model", minutes_later=1.5)))
    event = sqs_event(bodies)
    assert _failed(order_events.lambda_handler(event, stack.context)) == [event["Records"][1]["messageId"]]
    assert stack.decision_count() == 3
    assert stack.feature_item("seller#s-shenzhen-42", "P")["orders"] == 3


def test_an_order_the_store_refuses_fails_alone(stack: Stack) -> None:
    def refuse(params: dict[str, Any], **_: object) -> None:
        if "o-refused" in json.dumps(params, default=str):
            raise RuntimeError("the store broke on this one")

    session = boto3._get_default_session()
    session.events.register_first("before-call.dynamodb.PutItem", refuse)
    try:
        bodies = [json.dumps(make_order(f"o-52{i}", minutes_later=i)) for i in range(3)]
        bodies.append(json.dumps(make_order("o-refused", minutes_later=9)))
        event = sqs_event(bodies)
        assert _failed(order_events.lambda_handler(event, stack.context)) == [
            event["Records"][3]["messageId"]
        ]
    finally:
        session.events.unregister("before-call.dynamodb.PutItem", refuse)
    assert stack.decision_count() == 3


FEEDBACK_POISONS: dict[str, str] = {
    "not json": "chargeback!",
    "not feedback": '{"order_id": "o-1", "kind": "maybe"}',
    "year 1": json.dumps({"order_id": "o-1", "kind": "chargeback", "reported_at": "0001-01-01T00:00:00Z"}),
    "year 9999": json.dumps({"order_id": "o-1", "kind": "chargeback", "reported_at": "9999-12-31T23:59:59Z"}),
    "a week ahead": json.dumps(
        {
            "order_id": "o-1",
            "kind": "chargeback",
            "reported_at": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
        }
    ),
}


def test_each_poison_feedback_is_quarantined_alone(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELS_TABLE_NAME", stack.table("LabelsTable"))
    feedback_recorder.cache_clear()
    now = datetime.now(UTC).isoformat()
    good = [
        json.dumps({"order_id": f"o-53{i}", "kind": "legit_confirmed", "reported_at": now}) for i in range(3)
    ]
    event = sqs_event(good + list(FEEDBACK_POISONS.values()))
    try:
        failed = _failed(feedback.lambda_handler(event, stack.context))
    finally:
        feedback_recorder.cache_clear()
    assert failed == []
    assert [q["message_id"] for q in stack.drain("QuarantineQueue")] == [
        r["messageId"] for r in event["Records"][3:]
    ]
    labels = boto3.client("dynamodb").scan(TableName=stack.table("LabelsTable"), Select="COUNT")["Count"]
    assert labels == 3

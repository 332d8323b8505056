"""FeedbackFunction on moto, and train/serve parity of the label-based features.

Given orders scored by the deployed handlers and feedback delivered through the feedback
handler, the next orders see the labels exactly as training replay shows them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import numpy as np
import pytest

from dozor.domain.contracts import Order
from dozor.domain.feedback import Label
from dozor.domain.fraud.features import FEATURE_INDEX, FEATURE_NAMES
from dozor.domain.fraud.scoring import OrderScoring
from dozor.handlers.fraud import feedback, score_order
from dozor.handlers.fraud.wiring import feedback_recorder
from dozor_training.fraud.replay import replay
from dozor_training.fraud.simulator import SimulationConfig, simulate
from tests.helpers.aws_stack import BASE_TIME, Stack, api_event, make_order, sqs_event


@pytest.fixture
def labelled(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The stack with FeedbackFunction's environment too (the Labels table)."""
    monkeypatch.setenv("LABELS_TABLE_NAME", stack.table("LabelsTable"))
    feedback_recorder.cache_clear()
    yield stack
    feedback_recorder.cache_clear()


@pytest.fixture
def captured_rows(monkeypatch: pytest.MonkeyPatch) -> dict[str, np.ndarray]:
    """The feature rows the handler computes, by order id, captured on their way to the model."""
    rows: dict[str, np.ndarray] = {}
    original = OrderScoring.prepare

    def spy(self: OrderScoring, orders: list[Order], **options: Any) -> Any:
        scored = original(self, orders, **options)
        for s in scored:
            if s.features is not None:
                rows[s.order.order_id] = s.features.copy()
        return scored

    monkeypatch.setattr(OrderScoring, "prepare", spy)
    return rows


def score(stack: Stack, order: dict[str, Any]) -> dict[str, Any]:
    response = score_order.lambda_handler(api_event("POST", "/v1/orders/score", order), stack.context)
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"])


def send_feedback(stack: Stack, *messages: dict[str, Any] | str) -> dict[str, Any]:
    bodies = [m if isinstance(m, str) else json.dumps(m) for m in messages]
    return feedback.lambda_handler(sqs_event(bodies), stack.context)


def labels_table(stack: Stack) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb").Table(stack.table("LabelsTable"))
    return table.scan()["Items"]


def chargeback(order_id: str, minutes_later: float) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "kind": "chargeback",
        "reported_at": (BASE_TIME + timedelta(minutes=minutes_later)).isoformat(),
    }


def test_a_chargeback_is_stored_and_counted_once_however_often_it_arrives(
    labelled: Stack, captured_rows: dict[str, np.ndarray]
) -> None:
    # Given an order scored on card fp-stolen
    score(labelled, make_order("o-1", card="fp-stolen"))
    # When its chargeback arrives twice, then a fraud confirmation for the same order
    assert send_feedback(labelled, chargeback("o-1", 60), chargeback("o-1", 60)) == {"batchItemFailures": []}
    confirmed = chargeback("o-1", 90) | {"kind": "fraud_confirmed"}
    assert send_feedback(labelled, confirmed) == {"batchItemFailures": []}
    # Then both labels are stored once each, the order is counted once
    stored = [i for i in labels_table(labelled) if not i["label_id"].startswith("COUNTED#")]
    assert sorted(i["kind"] for i in stored) == ["chargeback", "fraud_confirmed"]
    # And the next order on that card sees exactly one fraud label on it
    score(labelled, make_order("o-2", buyer_id="b-other", card="fp-stolen", minutes_later=120))
    row = captured_rows["o-2"]
    assert row[FEATURE_INDEX["card_fraud_labels_30d"]] == 1
    assert row[FEATURE_INDEX["card_fraud_labels_lifetime"]] == 1
    assert row[FEATURE_INDEX["buyer_fraud_labels_30d"]] == 0  # another buyer
    assert row[FEATURE_INDEX["seller_fraud_rate_7d"]] == pytest.approx(1.0)


def test_each_feedback_leaves_one_audit_line_naming_its_subject_and_what_recording_did(
    labelled: Stack, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a scored order
    score(labelled, make_order("o-1", card="fp-stolen"))
    # When its chargeback arrives twice, then its fraud confirmation, then a lost parcel's report
    lost = {"parcel_id": "p-9", "kind": "lost", "reported_at": BASE_TIME.isoformat()}
    confirmed = chargeback("o-1", 90) | {"kind": "fraud_confirmed"}
    caplog.clear()
    capfd.readouterr()
    send_feedback(labelled, chargeback("o-1", 60), chargeback("o-1", 60), confirmed, lost)
    emitted = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    # Then the function's log says, per message, which subject it was and what recording did:
    # what ops reads to tell a counted label from a redelivery
    audit = [
        (
            getattr(r, "order_id", None),
            getattr(r, "parcel_id", None),
            getattr(r, "kind", None),
            getattr(r, "outcome", None),
        )
        for r in caplog.records
        if r.getMessage() == "feedback recorded"
    ]
    assert audit == [
        ("o-1", None, "chargeback", "counted"),
        ("o-1", None, "chargeback", "duplicate"),
        ("o-1", None, "fraud_confirmed", "already_counted"),
        (None, "p-9", "lost", "stored"),
    ]
    # And the same outcomes are counted as metrics (CloudWatch's embedded format), one each
    units = {
        m["Name"]: m["Unit"] for e in emitted for d in e["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }
    values = [
        (name, e[name]) for e in emitted for name in units if name.startswith("Feedback_") and name in e
    ]
    counted = {name: 0.0 for name, _ in values}
    for name, value in values:  # one value, or the list of values added in one flush
        counted[name] += sum(value) if isinstance(value, list) else value
    assert counted == {
        "Feedback_counted": 1,
        "Feedback_duplicate": 1,
        "Feedback_already_counted": 1,
        "Feedback_stored": 1,
    }
    assert {units[name] for name in counted} == {"Count"}


def test_feedback_for_an_unknown_order_or_a_parcel_is_stored_without_counting(labelled: Stack) -> None:
    result = send_feedback(
        labelled,
        chargeback("never-scored", 10),
        {"parcel_id": "p-9", "kind": "lost", "reported_at": BASE_TIME.isoformat()},
    )
    assert result == {"batchItemFailures": []}
    subjects = sorted(i["subject"] for i in labels_table(labelled))
    assert subjects == ["order#never-scored", "parcel#p-9"]


def test_a_poison_feedback_message_is_quarantined_alone(labelled: Stack) -> None:
    score(labelled, make_order("o-1"))
    event_bodies = [json.dumps(chargeback("o-1", 5)), "{not json", json.dumps({"kind": "chargeback"})]
    event = sqs_event(event_bodies)
    result = feedback.lambda_handler(event, labelled.context)
    assert result["batchItemFailures"] == []  # both quarantined, masked, with their reasons
    quarantined = labelled.drain("QuarantineQueue")
    assert [q["message_id"] for q in quarantined] == [r["messageId"] for r in event["Records"][1:]]
    assert [i["kind"] for i in labels_table(labelled) if "kind" in i] == ["chargeback"]


def test_train_serve_parity_the_deployed_handlers_compute_the_replay_features(
    labelled: Stack, captured_rows: dict[str, np.ndarray]
) -> None:
    # Given a small simulated history with fraud labelled two hours after each fraud order
    history = simulate(SimulationConfig(days=2, seed=21, orders_per_day=45, fraud_rate=0.15))
    orders = sorted((Order.model_validate(s.order) for s in history), key=lambda o: o.created_at)
    fraud = {s.order["order_id"] for s in history if s.is_fraud}
    labels = sorted(
        (Label(o.order_id, True, o.created_at + timedelta(hours=2)) for o in orders if o.order_id in fraud),
        key=lambda label: label.reported_at,
    )
    # When production sees it: each order scored by the API handler, each label delivered to the
    # feedback handler before the first order placed after it was reported
    pending = list(labels)
    for order in orders:
        while pending and pending[0].reported_at < order.created_at:
            label = pending.pop(0)
            message = {
                "order_id": label.order_id,
                "kind": "chargeback",
                "reported_at": label.reported_at.isoformat(),
            }
            assert send_feedback(labelled, message) == {"batchItemFailures": []}
        score(labelled, order.model_dump(mode="json"))
    # Then every order's served feature vector is the one training replay computes
    replayed = replay(orders, labels)
    served = np.stack([captured_rows[oid] for oid in replayed.order_ids])
    # DynamoDB adds decimals exactly, the replay adds binary floats: equal to float32 precision
    np.testing.assert_allclose(served, replayed.matrix, rtol=1e-6, equal_nan=True)
    # And the label-based features were exercised, not all zero
    label_columns = [i for i, n in enumerate(FEATURE_NAMES) if "fraud_labels" in n or "fraud_rate" in n]
    assert np.nansum(replayed.matrix[:, label_columns]) > 0

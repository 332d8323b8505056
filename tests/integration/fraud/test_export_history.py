"""`dozor export-history` on moto: what the handlers recorded comes back as training files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from dozor.domain.contracts import Order
from dozor.handlers.fraud import order_events, score_order
from dozor.handlers.fraud.wiring import dependencies
from dozor_training.cli import main
from tests.helpers.aws_stack import Stack, api_event, make_order, sqs_event


def put_label(
    stack: Stack, kind: str, reported_at: str, order_id: str | None = None, parcel_id: str | None = None
) -> None:
    """A label item the way FeedbackFunction writes it."""
    subject = f"order#{order_id}" if order_id else f"parcel#{parcel_id}"
    item: dict[str, Any] = {
        "subject": subject,
        "label_id": f"{reported_at}#{kind}#m-{subject}",
        "kind": kind,
        "reported_at": reported_at,
    }
    item |= {k: v for k, v in (("order_id", order_id), ("parcel_id", parcel_id)) if v}
    boto3.resource("dynamodb").Table(stack.table("LabelsTable")).put_item(Item=item)


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def recorded(stack: Stack) -> dict[str, dict[str, Any]]:
    """Three orders decided through the API, two through the order-event queue, and their labels."""
    raw = {f"o-{i}": make_order(f"o-{i}", buyer_id=f"b-{i % 2}", minutes_later=10 * i) for i in range(5)}
    for order_id in ("o-0", "o-1", "o-2"):
        response = score_order.lambda_handler(
            api_event("POST", "/v1/orders/score", raw[order_id]), stack.context
        )
        assert response["statusCode"] == 200
    event = sqs_event([json.dumps(raw["o-3"]), json.dumps(raw["o-4"])])
    assert order_events.lambda_handler(event, stack.context)["batchItemFailures"] == []
    put_label(stack, "chargeback", "2026-12-20T10:00:00+00:00", order_id="o-0")
    put_label(stack, "legit_confirmed", "2026-11-21T08:00:00+00:00", order_id="o-1")
    put_label(stack, "fraud_confirmed", "2026-11-22T08:00:00+00:00", order_id="o-3")
    put_label(stack, "delivered", "2026-11-30T08:00:00+00:00", order_id="o-2")  # a parcel outcome: no label
    put_label(stack, "lost", "2026-11-30T08:00:00+00:00", parcel_id="p-9")
    return raw


def export(stack: Stack, out: Path, *window: str) -> dict[str, Any]:
    args = ["--decisions-table", stack.table("DecisionsTable"), "--labels-table", stack.table("LabelsTable")]
    assert main(["export-history", "--out", str(out), *args, *window]) == 0
    return {name: read(out / f"{name}.jsonl") for name in ("orders", "decisions", "labels")}


def test_export_gives_back_orders_decisions_and_labels_without_personal_data(
    stack: Stack, recorded: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    files = export(stack, tmp_path / "history")

    # Every decided order comes back as a valid Order, in the contract's shape
    orders = {o["order_id"]: Order.model_validate(o) for o in files["orders"]}
    assert sorted(orders) == sorted(recorded)
    for order_id, order in orders.items():
        assert order.amount == recorded[order_id]["amount"]
        assert order.buyer.id == recorded[order_id]["buyer"]["id"]
        assert order.shipping is not None and order.shipping.region == "RU-MOW"
    # ...with no raw personal data anywhere in the export
    text = "".join(
        (tmp_path / "history" / f"{n}.jsonl").read_text() for n in ("orders", "decisions", "labels")
    )
    for order in recorded.values():
        for raw in (
            order["buyer"]["email"],
            order["buyer"]["phone"],
            order["ip"],
            order["shipping"]["address"],
        ):
            assert raw not in text
        assert order["payment"]["card_fingerprint"] not in text
    # Decisions match what the API returns for them
    store = dependencies().store
    for row in files["decisions"]:
        stored = store.get_decision(row["order_id"])
        assert row == {
            "order_id": stored.order_id,
            "decision": stored.decision.value,
            "score": stored.score,
            "model_version": stored.model_version,
            "decided_at": stored.decided_at.isoformat(),
        }
    # Fraud verdicts map to fraud / legit; parcel outcomes carry no fraud label
    assert {(x["order_id"], x["label"]) for x in files["labels"]} == {
        ("o-0", "fraud"),
        ("o-1", "legit"),
        ("o-3", "fraud"),
    }
    assert (
        next(x for x in files["labels"] if x["order_id"] == "o-0")["reported_at"]
        == "2026-12-20T10:00:00+00:00"
    )


def test_a_window_keeps_the_decisions_inside_it_and_their_labels(
    stack: Stack, recorded: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    decided = sorted((d["decided_at"], d["order_id"]) for d in export(stack, tmp_path / "all")["decisions"])
    since = decided[3][0]  # the SQS batch was decided together, after the three API calls

    files = export(stack, tmp_path / "window", "--since", since)
    assert {d["order_id"] for d in files["decisions"]} == {"o-3", "o-4"}
    assert {o["order_id"] for o in files["orders"]} == {"o-3", "o-4"}
    assert [(x["order_id"], x["label"]) for x in files["labels"]] == [("o-3", "fraud")]

    empty = export(stack, tmp_path / "empty", "--until", "2000-01-01")
    assert empty == {"orders": [], "decisions": [], "labels": []}

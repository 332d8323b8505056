"""`dozor export-history` with the parcel tables on moto, then `dozor lanes report` on what it wrote:
the live tables' carriers, delivery times and the sweeper's real alerts reach the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from dozor.adapters.dynamodb.parcels import DynamoCarrierFeeds
from dozor.domain.parcels.alerts import Alert, AlertType
from dozor.domain.parcels.shipments import ShipmentEvent
from dozor.handlers.fraud import order_events
from dozor.handlers.parcels import parcel_sweeper, shipment_events
from dozor.handlers.parcels.wiring import parcel_loss_model, shipment_dependencies
from dozor_local.invoke import lambda_context
from dozor_training.cli import main
from tests.helpers.aws_stack import BASE_TIME, Stack, make_order
from tests.helpers.aws_stack import sqs_event as order_event
from tests.helpers.shipments import build_parcel_model, scan, scheduled_event, sqs_event

NOW = datetime.now(UTC).replace(microsecond=0)
ORDERS = ("o-delivered", "o-late", "o-lost", "o-claimed", "o-digital")


def put_feedback(stack: Stack, kind: str, at: datetime, *, order_id: str = "", parcel_id: str = "") -> None:
    """A label item the way FeedbackFunction writes it."""
    subject = f"order#{order_id}" if order_id else f"parcel#{parcel_id}"
    item: dict[str, Any] = {
        "subject": subject,
        "label_id": f"{at.isoformat()}#{kind}#m-{subject}",
        "kind": kind,
        "reported_at": at.isoformat(),
    }
    item |= {k: v for k, v in (("order_id", order_id), ("parcel_id", parcel_id)) if v}
    boto3.resource("dynamodb").Table(stack.table("LabelsTable")).put_item(Item=item)


def deliver_scans(stack: Stack, scans: list[dict[str, Any]]) -> None:
    context = lambda_context(
        stack.local.function("ShipmentEventsFunction"), stack.local.env_for("ShipmentEventsFunction")
    )
    for start in range(0, len(scans), 10):
        event = sqs_event([json.dumps(s) for s in scans[start : start + 10]])
        assert shipment_events.lambda_handler(event, context)["batchItemFailures"] == []


def sweep(stack: Stack, at: datetime) -> None:
    """A scheduled sweep at `at`, the carrier's feed live until then (silence is the parcels')."""
    feeds = DynamoCarrierFeeds(boto3.client("dynamodb"), stack.table("ShipmentsTable"))
    heard = NOW - timedelta(days=8)
    while heard < at:
        feeds.heard_from({"CAINIAO"}, heard)
        heard += timedelta(hours=4)
    feeds.heard_from({"CAINIAO"}, at)
    context = lambda_context(
        stack.local.function("ParcelSweeperFunction"), stack.local.env_for("ParcelSweeperFunction")
    )
    parcel_sweeper.lambda_handler(scheduled_event(at), context)


@pytest.fixture
def live(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Stack:
    """Five orders decided; four parcels scanned and swept as production would record them."""
    orders = [make_order(o, buyer_id=f"b-{i}", minutes_later=10 * i) for i, o in enumerate(ORDERS)]
    del orders[-1]["shipping"]  # gift cards: nothing ships
    assert order_events.lambda_handler(order_event([json.dumps(o) for o in orders]), stack.context) == {
        "batchItemFailures": []
    }
    for function in ("ShipmentEventsFunction", "ParcelSweeperFunction"):
        for name, value in stack.local.env_for(function).items():
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("PARCEL_MODEL_DIR", str(build_parcel_model(tmp_path / "parcel_model")))
    shipment_dependencies.cache_clear()
    parcel_loss_model.cache_clear()

    def journey(order_id: str, *steps: tuple[str, float]) -> list[dict[str, Any]]:
        parcel = "p-" + order_id.removeprefix("o-")
        return [
            scan(parcel, status, NOW - timedelta(days=days_ago), order_id=order_id, region="RU-MOW")
            for status, days_ago in steps
        ]

    # Delivered in 3 days; silent for 5 days (past the lanes' 4-day STALLED deadline) with an
    # alert, then delivered (a false alert); silent and then declared LOST (a true one); claimed
    # by the buyer (a report naming the parcel only) while it was still moving.
    deliver_scans(
        stack,
        journey("o-delivered", ("INFO_RECEIVED", 9), ("IN_TRANSIT", 8), ("DELIVERED", 6))
        + journey("o-late", ("INFO_RECEIVED", 9), ("IN_TRANSIT", 8))
        + journey("o-lost", ("INFO_RECEIVED", 9), ("IN_TRANSIT", 7.5))
        + journey("o-claimed", ("INFO_RECEIVED", 9), ("IN_TRANSIT", 1)),
    )
    sweep(stack, NOW)
    deliver_scans(stack, journey("o-late", ("DELIVERED", 0.5)) + journey("o-lost", ("LOST", 0.25)))
    put_feedback(stack, "item_not_received", NOW - timedelta(hours=2), parcel_id="p-claimed")
    put_feedback(stack, "chargeback", NOW - timedelta(hours=1), order_id="o-lost")
    shipment_dependencies.cache_clear()
    parcel_loss_model.cache_clear()
    return stack


def export(stack: Stack, out: Path) -> dict[str, Any]:
    tables = {
        "--decisions-table": "DecisionsTable",
        "--labels-table": "LabelsTable",
        "--shipments-table": "ShipmentsTable",
        "--alerts-table": "AlertsTable",
    }
    args = [part for flag, table in tables.items() for part in (flag, stack.table(table))]
    assert main(["export-history", "--out", str(out), *args]) == 0
    return {
        name: [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
        for name in ("orders", "labels", "shipments", "alerts")
    }


def test_the_parcel_tables_come_out_as_scans_alerts_and_losses(live: Stack, tmp_path: Path) -> None:
    files = export(live, tmp_path / "history")

    # Every scan each parcel kept, as shipment events in the contract's shape, in time order.
    events = [ShipmentEvent.model_validate(e) for e in files["shipments"]]
    assert {e.order_id for e in events} == set(ORDERS) - {"o-digital"}
    assert len(events) == 11 and len({e.event_id for e in events}) == 11
    assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)
    assert {e.carrier for e in events} == {"CAINIAO"} and {e.destination_region for e in events} == {"RU-MOW"}
    # The sweeper's alerts, as the Alerts table holds them: the late parcel's resolved on delivery.
    alerts = [Alert.model_validate(a) for a in files["alerts"]]
    stalled = {a.order_id: a for a in alerts if a.type == AlertType.STALLED}
    assert set(stalled) == {"o-late", "o-lost"}
    assert stalled["o-late"].resolved_at is not None
    # Losses join the labels: the carrier's LOST and the buyer's claim that named only the parcel.
    labels = {(x["order_id"], x["label"]) for x in files["labels"]}
    assert labels == {("o-lost", "fraud"), ("o-lost", "lost"), ("o-claimed", "lost")}


def test_the_lane_report_from_the_live_tables_shows_carriers_delivery_times_and_real_alerts(
    live: Stack, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    export(live, history)
    argv = ["lanes", "report", "--out", str(tmp_path / "lanes")]
    for name in ("orders", "labels", "shipments", "alerts"):
        argv += [f"--{name}", str(history / f"{name}.jsonl")]
    assert main(argv) == 0
    report = json.loads((tmp_path / "lanes" / "lanes.json").read_text())

    assert report["alerts_from"] == "sweeper"
    (lane,) = report["by_carrier_area"]
    assert (lane["carrier"], lane["area"]) == ("CAINIAO", "moscow")
    overall = report["overall"]
    assert overall["parcels"] == 4  # the gift card shipped nothing
    assert (overall["delivered"], overall["lost"], overall["open"]) == (2, 2, 0)
    # Delivery time from each order to its DELIVERED scan
    created = {o: BASE_TIME + timedelta(minutes=10 * i) for i, o in enumerate(ORDERS)}
    days = sorted(
        (NOW - timedelta(days=ago) - created[o]).total_seconds() / 86_400
        for o, ago in (("o-delivered", 6), ("o-late", 0.5))
    )
    assert overall["delivery_days_p50"] == pytest.approx((days[0] + days[1]) / 2, abs=0.01)
    # Two parcels alerted by the sweeper, one of them lost: the claim came without an alert.
    assert (overall["alerts"], overall["true_alerts"], overall["true_alert_share"]) == (2, 1, 0.5)
    assert overall["fraud_orders"] == 1

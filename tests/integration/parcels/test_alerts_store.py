"""The Alerts table and topic on moto: one open alert per parcel and type, resolution, re-raising,
no alert on a parcel that changed since it was assessed, and subscribers filtering on attributes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3

from dozor.adapters.dynamodb.parcels import DynamoAlertStore, DynamoParcelStore
from dozor.adapters.sns import SnsAlertTopic
from dozor.domain.parcels.alerts import Alert, AlertType, Severity, assess
from dozor.domain.parcels.lanes import LaneDeadlines
from dozor.domain.parcels.shipments import Parcel, ShipmentEvent, apply_scans
from dozor.domain.parcels.tracking import AlertEvent
from tests.helpers.shipments import ParcelStack, parcel_model_dir, parcel_stack, scan

__all__ = ["parcel_model_dir", "parcel_stack"]  # fixtures

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _stores(stack: ParcelStack) -> tuple[DynamoParcelStore, DynamoAlertStore]:
    ddb = boto3.client("dynamodb")
    shipments = stack.table("ShipmentsTable")
    return DynamoParcelStore(ddb, shipments), DynamoAlertStore(ddb, stack.table("AlertsTable"), shipments)


def _stalled_parcel(parcels: DynamoParcelStore, parcel_id: str) -> tuple[Parcel, list[Alert]]:
    deadlines = LaneDeadlines()  # defaults: stalled after 8 days
    event = ShipmentEvent.model_validate(scan(parcel_id, "IN_TRANSIT", NOW - timedelta(days=10)))
    parcel = parcels.save(apply_scans(None, [event], deadlines), None, frozenset()).parcel
    alerts = assess(parcel, NOW, None, deadlines, 0.5)
    assert [a.type for a in alerts] == [AlertType.STALLED]
    return parcel, alerts


def test_an_open_alert_is_not_raised_twice_and_a_resolved_one_can_be_raised_again(
    parcel_stack: ParcelStack,
) -> None:
    parcels, alerts = _stores(parcel_stack)
    parcel, stalled = _stalled_parcel(parcels, "LP-10")

    assert alerts.open(parcel, stalled, None) is True
    assert alerts.open(parcel, stalled, None) is False  # already open: nothing new
    stored = parcels.load("LP-10")
    assert stored is not None and stored.open_alerts == {AlertType.STALLED}
    assert stored.outbox == {"RAISED:STALLED"}

    alerts.resolve("LP-10", frozenset({AlertType.STALLED}), NOW + timedelta(hours=1))
    resolved = alerts.get("LP-10", AlertType.STALLED)
    assert resolved is not None and resolved.resolved_at == NOW + timedelta(hours=1)
    assert alerts.open_alerts(AlertType.STALLED) == []
    assert parcels.load("LP-10").open_alerts == frozenset()  # type: ignore[union-attr]

    again = [stalled[0].model_copy(update={"raised_at": NOW + timedelta(days=2)})]
    assert alerts.open(parcel, again, None) is True
    (item,) = parcel_stack.alert_items()
    assert item["alert_state"]["S"] == "OPEN" and item["raised_at"]["S"] == again[0].raised_at.isoformat()


def test_no_alert_is_stored_for_a_parcel_that_changed_since_it_was_assessed(
    parcel_stack: ParcelStack,
) -> None:
    parcels, alerts = _stores(parcel_stack)
    parcel, stalled = _stalled_parcel(parcels, "LP-11")
    # the parcel is delivered between the assessment and the alert write
    delivered = ShipmentEvent.model_validate(scan("LP-11", "DELIVERED", NOW - timedelta(hours=1)))
    parcels.save(apply_scans(parcel, [delivered], LaneDeadlines()), parcel.version, frozenset())

    assert alerts.open(parcel, stalled, None) is False
    assert parcel_stack.alert_items() == []


def test_subscribers_filter_on_the_message_attributes(parcel_stack: ParcelStack) -> None:
    # Given a paging subscription that only wants HIGH severity alerts to Far East regions
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    pager = sqs.create_queue(QueueName="pager")["QueueUrl"]
    pager_arn = sqs.get_queue_attributes(QueueUrl=pager, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic = parcel_stack.local.physical_id("AlertsTopic")
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=pager_arn,
        Attributes={
            "RawMessageDelivery": "true",
            "FilterPolicy": json.dumps({"severity": ["HIGH"], "region": ["RU-PRI", "RU-KAM"]}),
        },
    )
    parcels, _ = _stores(parcel_stack)
    _, (stalled,) = _stalled_parcel(parcels, "LP-12")
    far_east = stalled.model_copy(update={"destination_region": "RU-PRI", "parcel_id": "LP-13"})
    publisher = SnsAlertTopic(boto3.client("sns"), topic)

    # When a MEDIUM and a HIGH alert to the Far East and a HIGH one to Novosibirsk are published
    for alert in (
        far_east.model_copy(update={"severity": Severity.MEDIUM}),
        far_east.model_copy(update={"severity": Severity.HIGH}),
        stalled.model_copy(update={"severity": Severity.HIGH}),
    ):
        publisher.publish(alert, AlertEvent.RAISED)

    # Then the pager got only the HIGH Far East one; the ops queue got all three
    paged = sqs.receive_message(QueueUrl=pager, MaxNumberOfMessages=10).get("Messages", [])
    assert [(json.loads(m["Body"])["parcel_id"], json.loads(m["Body"])["severity"]) for m in paged] == [
        ("LP-13", "HIGH")
    ]
    assert len(parcel_stack.drain("AlertsQueue")) == 3

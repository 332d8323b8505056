"""The sweeper on moto with poison in the Shipments table: items that are not parcels, a parcel
whose look hits a bug, one whose store call fails. Each is skipped, logged and counted alone; every
other overdue parcel is judged and alerted in the same run, and the next run catches up."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from dozor.adapters.dynamodb.parcels import DynamoCarrierFeeds
from dozor.handlers.parcels import parcel_sweeper, shipment_events
from tests.helpers.faults import Faults, code, sent
from tests.helpers.shipments import (
    ParcelStack,
    hours_ago,
    parcel_model_dir,
    parcel_stack,
    scan,
    scheduled_event,
    sqs_event,
)

__all__ = ["parcel_model_dir", "parcel_stack"]  # fixtures

GOOD = [f"LP-OK-{i}" for i in range(5)]


class BugError(Exception):
    """What a bug in code that one parcel's data reaches raises (not one of Dozor's errors)."""


def poison(stack: ParcelStack, like: str, parcel_id: str, parcel: str) -> None:
    """A copy of a due parcel's item under another id, with its ``parcel`` attribute replaced."""
    item = stack.parcel_item(like) | {"parcel_id": {"S": parcel_id}, "parcel": {"S": parcel}}
    boto3.client("dynamodb").put_item(TableName=stack.table("ShipmentsTable"), Item=item)


def sweep(stack: ParcelStack, at: datetime) -> dict[str, Any]:
    """A scheduled sweep at ``at``; the carrier's other parcels kept scanning until then (no outage)."""
    feeds = DynamoCarrierFeeds(boto3.client("dynamodb"), stack.table("ShipmentsTable"))
    heard = datetime.now(UTC)
    while heard < at:
        feeds.heard_from({"CAINIAO"}, heard)
        heard += timedelta(hours=4)
    feeds.heard_from({"CAINIAO"}, at)
    result: dict[str, Any] = parcel_sweeper.lambda_handler(
        scheduled_event(at), stack.context("ParcelSweeperFunction")
    )
    return result


def raised(stack: ParcelStack) -> set[str]:
    alerts = stack.drain("AlertsQueue")
    return {a["body"]["parcel_id"] for a in alerts if a["attributes"]["event"] == "RAISED"}


@pytest.fixture
def faults(parcel_stack: ParcelStack) -> Faults:
    return Faults()  # hooked before the functions build their clients


@pytest.fixture
def poisoned(parcel_stack: ParcelStack, faults: Faults) -> ParcelStack:
    # Five parcels silent for over two weeks: stalled when their late scans arrived, and likely lost
    bodies = [json.dumps(scan(pid, "IN_TRANSIT", hours_ago(400))) for pid in GOOD]
    result = shipment_events.lambda_handler(sqs_event(bodies), parcel_stack.context())
    assert result["batchItemFailures"] == []
    assert raised(parcel_stack) == set(GOOD)  # their STALLED alerts, at once
    # and three items in the due index that are not parcels this code can read
    record = parcel_stack.parcel("LP-OK-0")
    teleported = [s | {"status": "TELEPORTED"} for s in record["scans"]]
    poison(parcel_stack, "LP-OK-0", "LP-BAD-JSON", "{not json")
    poison(parcel_stack, "LP-OK-0", "LP-BAD-STATUS", json.dumps(record | {"scans": teleported}))
    poison(parcel_stack, "LP-OK-0", "LP-BAD-ALERT", json.dumps(record))
    boto3.client("dynamodb").update_item(
        TableName=parcel_stack.table("ShipmentsTable"),
        Key={"parcel_id": {"S": "LP-BAD-ALERT"}},
        UpdateExpression="SET open_alerts = :a",
        ExpressionAttributeValues={":a": {"SS": ["NO_SUCH_ALERT"]}},
    )
    return parcel_stack


def test_poison_parcels_are_skipped_and_counted_while_the_others_are_alerted(
    poisoned: ParcelStack, faults: Faults
) -> None:
    table_ok = poisoned.table("ShipmentsTable")

    def bug_on_ok_2(params: dict[str, Any], **_: Any) -> None:
        if "LP-OK-2" in sent(params):
            raise BugError("a bug this parcel's data reaches")

    throttled = code("ProvisionedThroughputExceededException")

    def store_fails_for_ok_3(params: dict[str, Any], **kwargs: Any) -> Any:
        body = sent(params)
        return throttled(**kwargs) if "LP-OK-3" in body and table_ok in body else None

    now = datetime.now(UTC)
    with (
        faults.on("before-call.sns.Publish", bug_on_ok_2),
        faults.on("before-call.dynamodb.TransactWriteItems", store_fails_for_ok_3),
    ):
        report = sweep(poisoned, now)

    # Then the sweep finished; each poison item and failing parcel was skipped alone, with why
    assert report["finished"] is True
    assert set(report["poisoned"]) == {"LP-BAD-JSON", "LP-BAD-STATUS", "LP-BAD-ALERT", "LP-OK-2"}
    assert "BugError" in report["poisoned"]["LP-OK-2"]
    assert set(report["deferred"]) == {"LP-OK-3"}
    # and every other overdue parcel was alerted in the same run
    assert raised(poisoned) == {"LP-OK-0", "LP-OK-1", "LP-OK-4"}

    # When the faults are gone, the next sweep catches up on the two that failed
    later = sweep(poisoned, now + timedelta(hours=7))
    assert set(later["poisoned"]) == {"LP-BAD-JSON", "LP-BAD-STATUS", "LP-BAD-ALERT"}  # still due
    assert later["deferred"] == {}
    assert raised(poisoned) == {"LP-OK-2", "LP-OK-3"}

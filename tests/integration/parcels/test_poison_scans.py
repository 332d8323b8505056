"""Poison isolation in ShipmentEventsFunction: whatever breaks one scan fails its record alone.

A batch of valid scans for two parcels plus one poison of each kind (not JSON, not a scan, dates
at datetime's edges and a week ahead, a parcel whose save the store refuses): the invalid ones are
quarantined, the broken save fails, and the valid parcels are built once (their scans applied, not redriven).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from dozor.handlers.parcels import shipment_events
from tests.helpers.shipments import ParcelStack, hours_ago, parcel_model_dir, parcel_stack, scan, sqs_event

__all__ = ["parcel_model_dir", "parcel_stack"]  # fixtures


def _dated(parcel_id: str, occurred_at: str) -> str:
    return json.dumps({**scan(parcel_id, "IN_TRANSIT", hours_ago(1)), "occurred_at": occurred_at})


POISONS = {
    "not json": "[scan",
    "not a scan": '{"event_id": "e-1", "status": "TELEPORTED"}',
    "year 1": _dated("LP-P1", "0001-01-01T00:00:00+05:00"),
    "year 9999": _dated("LP-P2", "9999-12-31T23:59:59-05:00"),
    "a week ahead": _dated("LP-P3", (datetime.now(UTC) + timedelta(days=7)).isoformat()),
}


def _failed(result: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in result["batchItemFailures"]]


def test_each_poison_scan_is_quarantined_alone_and_valid_parcels_are_built(parcel_stack: ParcelStack) -> None:
    good = [
        scan("LP-G1", "INFO_RECEIVED", hours_ago(30)),
        scan("LP-G1", "IN_TRANSIT", hours_ago(20)),
        scan("LP-G2", "INFO_RECEIVED", hours_ago(10)),
    ]
    event = sqs_event([json.dumps(s) for s in good] + list(POISONS.values()))
    failed = _failed(shipment_events.lambda_handler(event, parcel_stack.context()))
    assert failed == []
    quarantined = [m["body"] for m in parcel_stack.drain("QuarantineQueue")]
    assert [q["message_id"] for q in quarantined] == [r["messageId"] for r in event["Records"][3:]]
    assert quarantined[2]["masked"]["location"]["facility"] == "***"
    assert parcel_stack.parcel("LP-G1")["status"] == "IN_TRANSIT"
    assert parcel_stack.parcel("LP-G2")["status"] == "INFO_RECEIVED"


def test_a_parcel_the_store_breaks_on_fails_alone(parcel_stack: ParcelStack) -> None:
    def refuse(params: dict[str, Any], **_: object) -> None:
        if "LP-BROKEN" in json.dumps(params, default=str):
            raise OverflowError("date value out of range")

    session = boto3._get_default_session()
    event_name = "before-call.dynamodb.*"
    session.events.register_first(event_name, refuse)
    try:
        good = [scan("LP-G3", "INFO_RECEIVED", hours_ago(5)), scan("LP-G4", "INFO_RECEIVED", hours_ago(4))]
        bodies = [json.dumps(s) for s in good] + [json.dumps(scan("LP-BROKEN", "IN_TRANSIT", hours_ago(3)))]
        event = sqs_event(bodies)
        assert _failed(shipment_events.lambda_handler(event, parcel_stack.context())) == [
            event["Records"][2]["messageId"]
        ]
    finally:
        session.events.unregister(event_name, refuse)
    assert parcel_stack.parcel("LP-G3")["status"] == "INFO_RECEIVED"
    assert parcel_stack.parcel("LP-G4")["status"] == "INFO_RECEIVED"

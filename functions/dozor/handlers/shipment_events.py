"""ShipmentEventsFunction: applies carrier scans from SQS to parcels, reporting partial failures.

A record body is a scan (the Shipment event contract), or an EventBridge event whose ``detail``
is the scan. The batch's scans are grouped by parcel and all its parcels are read in one call;
each parcel is then written on its own, so a bad record or a failed write only retries the
records of that parcel, and after maxReceiveCount a poison record moves to the DLQ.
"""

import json
from collections import defaultdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from dozor.domain.shipments import ShipmentEvent
from dozor.handlers.wiring import logger, metrics, shipment_dependencies, tracer

processor = BatchProcessor(event_type=EventType.SQS)


class InvalidShipmentEventError(ValueError):
    """A record that can never be applied: it is reported, retried and ends in the DLQ."""


def parse_scan(body: str) -> ShipmentEvent:
    """The scan a record carries, or InvalidShipmentEventError naming what is wrong."""
    try:
        payload = json.loads(body)
        if isinstance(payload, dict) and "detail" in payload and "detail-type" in payload:
            payload = payload["detail"]
        return ShipmentEvent.model_validate(payload)
    except json.JSONDecodeError as error:
        raise InvalidShipmentEventError(f"body is not JSON: {error.msg} at {error.pos}") from error
    except ValidationError as error:
        fields = ", ".join(".".join(map(str, e["loc"])) + f" ({e['msg']})" for e in error.errors())
        raise InvalidShipmentEventError(f"invalid shipment event: {fields}") from error


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    scans: dict[str, ShipmentEvent] = {}
    invalid: dict[str, InvalidShipmentEventError] = {}
    for record in (SQSRecord(r) for r in event.get("Records", [])):
        try:
            scans[record.message_id] = parse_scan(record.body)
        except InvalidShipmentEventError as error:
            invalid[record.message_id] = error
    by_parcel: dict[str, list[ShipmentEvent]] = defaultdict(list)
    for scan in scans.values():
        by_parcel[scan.parcel_id].append(scan)
    outcomes = shipment_dependencies().tracking.record_scans(by_parcel)

    def settle(record: SQSRecord) -> None:
        if record.message_id in invalid:
            error = invalid[record.message_id]
            logger.error(
                "poison shipment event", extra={"message_id": record.message_id, "error": str(error)}
            )
            raise error
        outcome = outcomes[scans[record.message_id].parcel_id]
        if isinstance(outcome, Exception):
            raise outcome
        metrics.add_metric(name="ScansApplied", unit=MetricUnit.Count, value=1)

    return process_partial_response(event=event, record_handler=settle, processor=processor, context=context)

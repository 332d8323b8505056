"""ShipmentEventsFunction: applies carrier scans from SQS to parcels, reporting partial failures.

A record body is a scan (the Shipment event contract), or an EventBridge event whose ``detail``
is the scan. The batch's scans are grouped by parcel and all its parcels are read in one call;
each parcel is then written on its own, so a bad record or a failed write only retries the
records of that parcel, and after maxReceiveCount a poison record moves to the DLQ.
"""

from collections import defaultdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from dozor.domain.errors import InvalidRecordError
from dozor.domain.parcels.shipments import ShipmentEvent
from dozor.handlers.parcels.wiring import shipment_dependencies
from dozor.handlers.records import parse_record
from dozor.handlers.wiring import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    scans: dict[str, ShipmentEvent] = {}
    invalid: dict[str, InvalidRecordError] = {}
    for record in (SQSRecord(r) for r in event.get("Records", [])):
        try:
            scans[record.message_id] = parse_record(record.body, ShipmentEvent)
        except InvalidRecordError as error:
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

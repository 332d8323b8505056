"""ShipmentEventsFunction: applies carrier scans from SQS to parcels, reporting partial failures.

A record body is a scan (the Shipment event contract), or an EventBridge event whose ``detail``
is the scan. The batch's scans are grouped by parcel and all its parcels are read in one call;
each parcel is then written on its own, so a bad record or a failed write only retries the
records of that parcel. Whatever goes wrong with one record fails that record alone: when the
batch cannot be applied together, each parcel's scans are applied on their own (applying scans
is idempotent, so a parcel the failed attempt already saved is left as it is).
"""

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from dozor.domain.parcels.shipments import ShipmentEvent
from dozor.domain.parcels.tracking import ParcelTracking
from dozor.handlers.parcels.wiring import shipment_dependencies
from dozor.handlers.quarantine import quarantine_for, quarantining
from dozor.handlers.records import parse_record
from dozor.handlers.wiring import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def _apply(tracking: ParcelTracking, by_parcel: Mapping[str, list[ShipmentEvent]]) -> dict[str, object]:
    """Each parcel's outcome (its state, or the error that fails its records)."""
    try:
        return dict(tracking.record_scans(by_parcel))
    except Exception:
        logger.warning("scans not applied together; applying each parcel alone", exc_info=True)
    outcomes: dict[str, object] = {}
    for parcel_id, events in by_parcel.items():
        try:
            outcomes.update(tracking.record_scans({parcel_id: events}))
        except Exception as error:  # this parcel's records fail; the others are done
            outcomes[parcel_id] = error
    return outcomes


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    now = datetime.now(UTC)
    scans: dict[str, ShipmentEvent] = {}
    unreadable: dict[str, Exception] = {}
    for record in (SQSRecord(r) for r in event.get("Records", [])):
        try:
            scans[record.message_id] = parse_record(record.body, ShipmentEvent, now)
        except Exception as error:  # failed below, in its own record's handling
            unreadable[record.message_id] = error
    by_parcel: dict[str, list[ShipmentEvent]] = defaultdict(list)
    for scan in scans.values():
        by_parcel[scan.parcel_id].append(scan)
    outcomes = _apply(shipment_dependencies().tracking, by_parcel) if by_parcel else {}

    def settle(record: SQSRecord) -> None:
        if record.message_id in unreadable:
            error = unreadable[record.message_id]
            logger.error(
                "poison shipment event", extra={"message_id": record.message_id, "error": str(error)}
            )
            raise error
        outcome = outcomes[scans[record.message_id].parcel_id]
        if isinstance(outcome, Exception):
            raise outcome
        metrics.add_metric(name="ScansApplied", unit=MetricUnit.Count, value=1)

    handler = quarantining(settle, lambda: quarantine_for("shipment-events"))
    return process_partial_response(event=event, record_handler=handler, processor=processor, context=context)

"""OrderEventsFunction: scores order events from SQS in batches, reporting partial failures.

A record body is an order, or an EventBridge event whose ``detail`` is the order (the order bus
delivering to the queue). Valid orders of the batch are scored together in one model call; each
is then stored on its own, so a bad record or a failed write only retries that record, and
after maxReceiveCount a poison record moves to the DLQ.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from dozor.domain.contracts import Order
from dozor.domain.errors import InvalidRecordError
from dozor.handlers.fraud.wiring import report_shadow, scoring
from dozor.handlers.records import parse_record
from dozor.handlers.wiring import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    records = [SQSRecord(r) for r in event.get("Records", [])]
    orders: dict[str, Order] = {}
    invalid: dict[str, InvalidRecordError] = {}
    for record in records:
        try:
            orders[record.message_id] = parse_record(record.body, Order)
        except InvalidRecordError as error:
            invalid[record.message_id] = error
    service = scoring()
    scored = dict(zip(orders, service.prepare(list(orders.values())), strict=True))

    def store(record: SQSRecord) -> None:
        if record.message_id in invalid:
            logger.error(
                "poison order event",
                extra={"message_id": record.message_id, "error": str(invalid[record.message_id])},
            )
            raise invalid[record.message_id]
        decision = service.commit(scored[record.message_id])
        report_shadow(scored[record.message_id], decision)
        metrics.add_metric(name=f"Decision{decision.decision.value.title()}", unit=MetricUnit.Count, value=1)

    return process_partial_response(event=event, record_handler=store, processor=processor, context=context)

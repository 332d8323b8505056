"""OrderEventsFunction: scores order events from SQS in batches, reporting partial failures.

A record body is an order, or an EventBridge event whose ``detail`` is the order (the order bus
delivering to the queue). Valid orders of the batch are scored together in one model call; each
is then stored on its own. Whatever goes wrong with one record (its body, its dates, the model,
the store) fails that record alone: when the batch cannot be scored together, each order is
scored and stored on its own in the record handler, so its batch-mates are still decided once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from dozor.domain.contracts import Order
from dozor.domain.fraud.scoring import OrderScoring, ScoredOrder
from dozor.handlers.fraud.wiring import report_shadow, scoring
from dozor.handlers.quarantine import quarantine_for, quarantining
from dozor.handlers.records import parse_record
from dozor.handlers.wiring import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def _prepare_together(service: OrderScoring, orders: dict[str, Order]) -> dict[str, ScoredOrder]:
    """The batch scored in one model call; empty when that fails (each order is then scored alone)."""
    if not orders:
        return {}
    try:
        return dict(zip(orders, service.prepare(list(orders.values()), within_budget=False), strict=True))
    except Exception:  # one order's failure must not decide the others' fate
        logger.warning("batch not scored together; scoring each order alone", exc_info=True)
        return {}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    now = datetime.now(UTC)
    orders: dict[str, Order] = {}
    unreadable: dict[str, Exception] = {}
    for record in (SQSRecord(r) for r in event.get("Records", [])):
        try:
            orders[record.message_id] = parse_record(record.body, Order, now)
        except Exception as error:  # failed below, in its own record's handling
            unreadable[record.message_id] = error
    service = scoring()
    scored = _prepare_together(service, orders)

    def store(record: SQSRecord) -> None:
        if record.message_id in unreadable:
            error = unreadable[record.message_id]
            raise error
        prepared = (
            scored.get(record.message_id)
            or service.prepare([orders[record.message_id]], within_budget=False)[0]
        )
        decision = service.commit(prepared)
        report_shadow(prepared, decision)
        metrics.add_metric(name=f"Decision{decision.decision.value.title()}", unit=MetricUnit.Count, value=1)

    handler = quarantining(store, lambda: quarantine_for("order-events"))
    return process_partial_response(event=event, record_handler=handler, processor=processor, context=context)

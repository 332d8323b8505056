"""PendingCommitsFunction: stores the decisions checkout got while the store could not take them.

Each record is one `PendingCommit` (`dozor.adapters.sqs.encode_pending`): the decision, its
counter updates, the pseudonymised order, its fingerprint and its duties. `OrderScoring.apply`
writes it with the same conditional transaction as the scoring path (so an order is counted once
and the first stored decision wins) and then does its duties (review, decision event). A store
failure fails the record alone and SQS redelivers it; a body that is not a pending commit is
quarantined.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from dozor.adapters.sqs import decode_pending
from dozor.domain.errors import StoreUnavailableError
from dozor.handlers.fraud.wiring import dependencies
from dozor.handlers.quarantine import quarantine_for, quarantining
from dozor.handlers.wiring import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def apply_pending(record: SQSRecord) -> None:
    pending = decode_pending(record.body)
    try:
        decision = dependencies().scoring.apply(pending)
    except StoreUnavailableError as error:  # the record fails alone; its queue brings it back
        logger.warning(
            "pending decision not applied yet",
            extra={
                "order_id": pending.decision.order_id,
                "reason": str(error),
                "receive_count": record.attributes.approximate_receive_count,
            },
        )
        raise
    logger.info(
        "pending decision applied",
        extra={"order_id": decision.order_id, "won": decision.decided_at == pending.decision.decided_at},
    )
    metrics.add_metric(name="PendingApplied", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    handler = quarantining(apply_pending, lambda: quarantine_for("pending-commits"))
    return process_partial_response(event=event, record_handler=handler, processor=processor, context=context)

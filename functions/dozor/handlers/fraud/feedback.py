"""FeedbackFunction: chargebacks, review verdicts and parcel outcomes from SQS, into labels.

Each record is one Feedback message (or an EventBridge event carrying it in ``detail``). It is
stored in the Labels table and, when it says fraud or lost, counted against the entities of the
order it names, which is what the label-based features of the next orders read. Records are
independent: a bad one is reported as a batch item failure and ends in the DLQ.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from dozor.domain.feedback import Feedback
from dozor.handlers.fraud.wiring import feedback_recorder
from dozor.handlers.quarantine import quarantine_for, quarantining
from dozor.handlers.records import parse_record
from dozor.handlers.wiring import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def record_feedback(record: SQSRecord) -> None:
    feedback = parse_record(record.body, Feedback)
    outcome = feedback_recorder().record(feedback)
    logger.info(
        "feedback recorded",
        extra={
            "order_id": feedback.order_id,
            "parcel_id": feedback.parcel_id,
            "kind": feedback.kind.value,
            "outcome": outcome.value,
        },
    )
    metrics.add_metric(name=f"Feedback_{outcome.value}", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    handler = quarantining(record_feedback, lambda: quarantine_for("feedback"))
    return process_partial_response(event=event, record_handler=handler, processor=processor, context=context)

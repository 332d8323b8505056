"""ReviewIntakeFunction: orders decided REVIEW, from the review queue into review cases.

Each message (`SqsReviewQueue`: the decision and the order's ids and amount) opens one case in the
ReviewCases table, where the console lists it; a redelivered message finds its case open already
and changes nothing. A message that is not a review message is quarantined, masked; a store that
fails fails the record alone, for SQS to redeliver.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from dozor.adapters.dynamodb.reviews import DynamoReviewCases
from dozor.domain.fraud.reviews import ReviewMessage
from dozor.handlers.quarantine import quarantine_for, quarantining
from dozor.handlers.records import parse_record
from dozor.handlers.wiring import aws_client, logger, metrics, tracer
from dozor.settings import ReviewIntakeSettings

processor = BatchProcessor(event_type=EventType.SQS)


@lru_cache(maxsize=1)
def review_cases() -> DynamoReviewCases:
    """The cases table, built on first use (tests call `review_cases.cache_clear()`)."""
    return DynamoReviewCases(aws_client("dynamodb"), ReviewIntakeSettings().review_cases_table_name)


def open_case(record: SQSRecord) -> None:
    message = parse_record(record.body, ReviewMessage)
    sent = record.attributes.sent_timestamp
    queued_at = datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else datetime.now(UTC)
    opened = review_cases().open(message.case(queued_at))
    logger.info("review case", extra={"order_id": message.order.order_id, "opened": opened})
    metrics.add_metric(
        name="ReviewCaseOpened" if opened else "ReviewCaseRepeated", unit=MetricUnit.Count, value=1
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    handler = quarantining(open_case, lambda: quarantine_for("review-intake"))
    return process_partial_response(event=event, record_handler=handler, processor=processor, context=context)

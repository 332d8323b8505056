"""SQS: the review queue that human reviewers' tooling consumes, and the feedback queue."""

from __future__ import annotations

import json
from typing import Any

from dozor.adapters.aws_errors import SQS, translated
from dozor.domain.contracts import Decision, Order
from dozor.domain.feedback import Feedback


class SqsReviewQueue:
    """Implements `dozor.domain.fraud.scoring.ReviewQueue`: one message per order sent to review."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def submit(self, decision: Decision, order: Order) -> None:
        # No personal data on the queue: reviewers look the order up by id in the order system.
        body = {
            "decision": decision.model_dump(mode="json"),
            "order": {
                "order_id": order.order_id,
                "created_at": order.created_at.isoformat(),
                "buyer_id": order.buyer.id,
                "seller_id": order.seller.id,
                "amount": order.amount,
                "currency": order.currency,
            },
        }
        with translated(SQS, f"review of {decision.order_id} not queued"):
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=json.dumps(body),
                MessageAttributes={
                    "risk_level": {"DataType": "String", "StringValue": decision.risk_level.value},
                    "model_version": {"DataType": "String", "StringValue": decision.model_version},
                },
            )


class SqsFeedbackQueue:
    """Implements `dozor.domain.parcels.tracking.FeedbackQueue`: parcel outcomes for the fraud labels."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def report(self, feedback: Feedback) -> None:
        with translated(SQS, f"feedback for {feedback.parcel_id} not sent"):
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=feedback.model_dump_json(exclude_none=True),
                MessageAttributes={"kind": {"DataType": "String", "StringValue": feedback.kind.value}},
            )

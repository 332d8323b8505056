"""SQS: the review queue that human reviewers' tooling consumes, the feedback queue, and the
pending-commits queue (decisions checkout got that the store could not take in time)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dozor.adapters.aws_errors import SQS, translated
from dozor.domain.aggregates import ContainerUpdate
from dozor.domain.contracts import Decision, Order
from dozor.domain.errors import InvalidRecordError
from dozor.domain.fraud.scoring import PendingCommit

if TYPE_CHECKING:  # the scoring functions send no feedback; only the parcel functions build one
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


class SqsPendingCommits:
    """Implements `dozor.domain.fraud.scoring.PendingCommits`: one message per decision not stored.

    The message is the whole commit: the decision, its counter updates, the pseudonymised order
    (no raw personal data on the queue), its fingerprint and its duties. The pending-commits
    function applies it with `OrderScoring.apply`.
    """

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def submit(self, pending: PendingCommit, reason: str) -> None:
        with translated(SQS, f"pending commit of {pending.decision.order_id} not queued"):
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=encode_pending(pending),
                MessageAttributes={"reason": {"DataType": "String", "StringValue": reason[:256] or "-"}},
            )


def encode_pending(pending: PendingCommit) -> str:
    return json.dumps(
        {
            "decision": pending.decision.model_dump(mode="json"),
            "updates": [
                {
                    "key": list(u.key),
                    "add": u.add,
                    "add_to_set": {k: sorted(v) for k, v in u.add_to_set.items()},
                    "set_min": u.set_min,
                    "expires_at": u.expires_at,
                }
                for u in pending.updates
            ],
            "order": pending.order.model_dump(mode="json", exclude_none=True) if pending.order else None,
            "fingerprint": pending.fingerprint,
            "outbox": sorted(pending.outbox),
            "retired_writers": sorted(pending.retired_writers),
            "counted": pending.counted,
        }
    )


def decode_pending(body: str) -> PendingCommit:
    """The commit a pending-commits message carries; `InvalidRecordError` if it is not one."""
    try:
        raw = json.loads(body)
        updates = [
            ContainerUpdate(
                key=(str(u["key"][0]), str(u["key"][1])),
                add={k: float(v) for k, v in u["add"].items()},
                add_to_set={k: set(v) for k, v in u["add_to_set"].items()},
                set_min={k: float(v) for k, v in u["set_min"].items()},
                expires_at=None if u["expires_at"] is None else int(u["expires_at"]),
            )
            for u in raw["updates"]
        ]
        return PendingCommit(
            Decision.model_validate(raw["decision"]),
            updates,
            Order.model_validate(raw["order"]) if raw.get("order") else None,
            str(raw.get("fingerprint", "")),
            frozenset(raw.get("outbox", [])),
            frozenset(str(w) for w in raw.get("retired_writers", [])),  # absent from older commits
            raw.get("counted") is True,
        )
    except Exception as error:  # any shape error: this message can never be applied
        raise InvalidRecordError(f"not a pending commit: {type(error).__name__}: {error}") from error

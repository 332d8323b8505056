"""Manual review: the orders decided REVIEW become cases a reviewer settles as fraud or legit.

A case is opened from the review queue's message (the decision and the order's ids and amount;
no personal data) and stays open until a reviewer gives a verdict. The verdict is told to the rest
of Dozor as Feedback (`fraud_confirmed` / `legit_confirmed`), so it becomes a label exactly as a
chargeback does; the case keeps who settled it, when and why. A verdict is given once: a second
one on a settled case is a conflict, not a silent overwrite of the first reviewer's word; the same
verdict again while its Feedback is unsent (by anyone) re-sends that Feedback, as first given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from dozor.domain import aggregates as agg
from dozor.domain.contracts import Decision, Id, Instant
from dozor.domain.feedback import Feedback, FeedbackKind, FeedbackQueue


class Verdict(StrEnum):
    FRAUD = "fraud"
    LEGIT = "legit"


class CaseState(StrEnum):
    OPEN = "open"
    FRAUD = "fraud"
    LEGIT = "legit"


_FEEDBACK = {Verdict.FRAUD: FeedbackKind.FRAUD_CONFIRMED, Verdict.LEGIT: FeedbackKind.LEGIT_CONFIRMED}


class ReviewCase(BaseModel):
    """One order waiting for (or settled by) a reviewer."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    decision: Decision
    amount: float
    currency: str
    buyer_id: str
    seller_id: str
    queued_at: datetime
    state: CaseState = CaseState.OPEN
    verdict_by: str | None = None
    verdict_at: datetime | None = None
    note: str | None = None


class ReviewedOrder(BaseModel):
    """What the review message says of the order: ids and money, no personal data."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    order_id: Id
    created_at: Instant
    buyer_id: Id
    seller_id: Id
    amount: float
    currency: str


class ReviewMessage(BaseModel):
    """One review-queue message, as `dozor.adapters.sqs.SqsReviewQueue` sends it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    decision: Decision
    order: ReviewedOrder

    def case(self, queued_at: datetime) -> ReviewCase:
        """The open case this message starts."""
        return ReviewCase(
            order_id=self.order.order_id,
            decision=self.decision,
            amount=self.order.amount,
            currency=self.order.currency,
            buyer_id=self.order.buyer_id,
            seller_id=self.order.seller_id,
            queued_at=queued_at,
        )


def feedback_for(order_id: str, verdict: Verdict, at: datetime) -> Feedback:
    """The Feedback a verdict sends: the same message a payment provider's confirmation would be."""
    return Feedback(order_id=order_id, kind=_FEEDBACK[verdict], reported_at=at)


class ReviewCases(Protocol):
    def settle(self, order_id: str, verdict: Verdict, by: str, note: str | None, at: datetime) -> ReviewCase:
        """Record the verdict with its Feedback pending; the case as first settled (a retry of
        the same verdict keeps the first reviewer, time and note); ConflictError for the other
        verdict, or for this one once its Feedback was sent; NotFoundError for no case."""
        ...

    def feedback_sent(self, order_id: str) -> None: ...


def record_verdict(
    cases: ReviewCases,
    feedback: FeedbackQueue,
    order_id: str,
    verdict: Verdict,
    by: str,
    note: str | None,
    at: datetime,
) -> ReviewCase:
    """Settle a case and send its verdict to the labels as Feedback, once.

    In that order, each step safe to repeat: the case is settled first (Feedback pending), so
    a failed send leaves it pending and the reviewer's retry sends it again; the Feedback is
    built from the case as first stored, so a retry (anyone's) sends the same Feedback with the
    first reviewer's time and the labels get no second, later one.
    """
    case = cases.settle(order_id, verdict, by, note, at)
    feedback.report(feedback_for(order_id, verdict, case.verdict_at or at))
    cases.feedback_sent(order_id)
    return case


class EntityHistory(BaseModel):
    """What Dozor remembers of a buyer or seller, as a reviewer reads it."""

    model_config = ConfigDict(frozen=True)

    orders_24h: int
    orders_30d: int
    lifetime_orders: int
    fraud_labels_30d: int
    lifetime_fraud_labels: int
    first_seen: datetime | None = Field(description="its earliest stored order")


def history_of(aggregates: agg.EntityAggregates) -> EntityHistory:
    """An entity's counters (`aggregates.summarise`) in a reviewer's terms."""
    first = aggregates.first_seen
    return EntityHistory(
        orders_24h=int(aggregates.counts.get("24h", 0)),
        orders_30d=int(aggregates.counts.get("30d", 0)),
        lifetime_orders=int(aggregates.lifetime_orders),
        fraud_labels_30d=int(aggregates.fraud_labels.get("30d", 0)),
        lifetime_fraud_labels=int(aggregates.lifetime_fraud_labels),
        first_seen=None if first is None else datetime.fromtimestamp(first, tz=UTC),
    )

"""Feedback: what the world tells Dozor after the decision (DESIGN.md § Contracts).

Chargebacks and review verdicts say whether an order was fraud; carrier outcomes and buyer claims
say whether its parcel arrived. Training reads the same facts from a labels file, one row per
order (`order_id, label, reported_at`); serving receives them one message at a time on the
feedback queue. Both become `Label`s, and a label only counts for orders created after its
`reported_at`: that is what keeps label-based features point-in-time correct.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, Self

from pydantic import BaseModel, ConfigDict, model_validator

from dozor.domain.aggregates import FRAUD, LOSS
from dozor.domain.contracts import Id, Instant


class FeedbackKind(StrEnum):
    CHARGEBACK = "chargeback"  # the card holder disputed the payment: fraud
    FRAUD_CONFIRMED = "fraud_confirmed"  # a reviewer or the payment provider confirmed fraud
    LEGIT_CONFIRMED = "legit_confirmed"  # a reviewer cleared the order
    DELIVERED = "delivered"  # the parcel reached the buyer
    LOST = "lost"  # the carrier or ops declared the parcel lost
    ITEM_NOT_RECEIVED = "item_not_received"  # the buyer claimed the parcel never came


FRAUD_KINDS = frozenset({FeedbackKind.CHARGEBACK, FeedbackKind.FRAUD_CONFIRMED})
LEGIT_KINDS = frozenset({FeedbackKind.LEGIT_CONFIRMED})
LOSS_KINDS = frozenset({FeedbackKind.LOST, FeedbackKind.ITEM_NOT_RECEIVED})


class Feedback(BaseModel):
    """One feedback message. It names the order, the parcel, or both."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    order_id: Id | None = None
    parcel_id: Id | None = None
    kind: FeedbackKind
    reported_at: Instant

    @model_validator(mode="after")
    def _names_something(self) -> Self:
        if self.order_id is None and self.parcel_id is None:
            raise ValueError("feedback must name an order_id or a parcel_id")
        return self


@dataclass(frozen=True, slots=True)
class Label:
    """An order's fraud verdict as training sees it: fraud or legit, and when that became known."""

    order_id: str
    is_fraud: bool
    reported_at: datetime


@dataclass(frozen=True, slots=True)
class Loss:
    """The order's parcel was lost (final carrier status or the buyer's claim), known from ``reported_at``."""

    order_id: str
    reported_at: datetime


def label_of(feedback: Feedback) -> Label | None:
    """The fraud label a feedback message carries, if any (parcel outcomes carry none)."""
    if feedback.order_id is None:
        return None
    if feedback.kind in FRAUD_KINDS:
        return Label(feedback.order_id, True, feedback.reported_at)
    if feedback.kind in LEGIT_KINDS:
        return Label(feedback.order_id, False, feedback.reported_at)
    return None


def verdict_of(kind: FeedbackKind) -> str | None:
    """What a feedback kind counts as in the label aggregates: FRAUD, LOSS or nothing."""
    if kind in FRAUD_KINDS:
        return FRAUD
    if kind in LOSS_KINDS:
        return LOSS
    return None


class FeedbackQueue(Protocol):
    """Where Feedback goes to become labels (the feedback queue): from carriers, payment
    providers, the parcel tracking and the console's reviewers alike."""

    def report(self, feedback: Feedback) -> None: ...

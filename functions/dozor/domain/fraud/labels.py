"""Labels: feedback turned into the label-based aggregates the next orders' features read.

The same arithmetic as training replay (`features.label_updates` at ``reported_at``): a chargeback
recorded here changes exactly the features the next order of that buyer, card or seller would
have seen in replay. Each order is counted once per verdict, whatever arrives twice.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from dozor.domain.aggregates import ContainerUpdate, Entity
from dozor.domain.feedback import Feedback, verdict_of
from dozor.domain.fraud.features import label_updates


class Recorded(StrEnum):
    """What recording one feedback message did."""

    COUNTED = "counted"  # stored, and counted against the order's entities
    STORED = "stored"  # stored; nothing to count (a legit verdict, an unknown order, a parcel only)
    ALREADY_COUNTED = "already_counted"  # stored; the order was already counted as fraud / lost
    DUPLICATE = "duplicate"  # this very feedback was recorded before (at-least-once delivery)


class LabelStore(Protocol):
    def entities_of(self, order_id: str) -> list[Entity] | None:
        """The entities the order was counted for when it was scored; None if Dozor never scored it."""
        ...

    def record(self, feedback: Feedback, verdict: str | None, updates: list[ContainerUpdate]) -> Recorded:
        """Store the feedback; for a verdict not yet counted for its order, apply ``updates`` with it."""
        ...


class FeedbackRecorder:
    """Turns feedback into labels and label-based aggregates, once per order and verdict."""

    def __init__(self, store: LabelStore) -> None:
        self._store = store

    def record(self, feedback: Feedback) -> Recorded:
        verdict = verdict_of(feedback.kind)
        if verdict is None or feedback.order_id is None:
            return self._store.record(feedback, None, [])
        entities = self._store.entities_of(feedback.order_id)
        if not entities:  # an order Dozor never scored: keep the label, there is nothing to count
            return self._store.record(feedback, None, [])
        return self._store.record(feedback, verdict, label_updates(entities, feedback.reported_at, verdict))

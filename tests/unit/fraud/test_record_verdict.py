"""A reviewer's verdict: the case settled first, then its Feedback sent, then marked sent; a
failed send leaves the Feedback pending, and the retry sends the same Feedback, first time kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dozor.adapters.memory import CollectingReviewQueue, InMemoryDecisionStore
from dozor.domain.errors import StoreUnavailableError
from dozor.domain.feedback import Feedback, FeedbackKind
from dozor.domain.fraud.model import FraudModel
from dozor.domain.fraud.reviews import CaseState, ReviewCase, Verdict, record_verdict
from dozor.domain.fraud.scoring import OrderScoring
from dozor.domain.privacy import PiiHasher
from tests.helpers.orders import build_order

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


class Desk:
    """The review cases and the feedback queue, settling as the Reviews table does (first verdict,
    reviewer and time kept while its Feedback is pending) and failing the first `failing` sends."""

    def __init__(self, case: ReviewCase, failing: int = 0) -> None:
        self.case, self.failing = case, failing
        self.pending = False
        self.sent: list[Feedback] = []

    def settle(self, order_id: str, verdict: Verdict, by: str, note: str | None, at: datetime) -> ReviewCase:
        if self.case.state is CaseState.OPEN:
            self.case = self.case.model_copy(
                update={"state": CaseState(verdict.value), "verdict_by": by, "verdict_at": at, "note": note}
            )
            self.pending = True
        return self.case

    def feedback_sent(self, order_id: str) -> None:
        self.pending = False

    def report(self, feedback: Feedback) -> None:
        if self.failing:
            self.failing -= 1
            raise StoreUnavailableError("feedback queue unreachable")
        self.sent.append(feedback)


@pytest.fixture(scope="module")
def case() -> ReviewCase:
    scoring = OrderScoring(
        InMemoryDecisionStore(), CollectingReviewQueue(), FraudModel.load(), PiiHasher(b"k")
    )
    decision = scoring.score(build_order("o-case", T0))
    return ReviewCase(
        order_id="o-case",
        decision=decision,
        amount=4990.0,
        currency="RUB",
        buyer_id="b-1",
        seller_id="s-1",
        queued_at=T0,
    )


@pytest.mark.parametrize(
    ("verdict", "kind"),
    [(Verdict.FRAUD, FeedbackKind.FRAUD_CONFIRMED), (Verdict.LEGIT, FeedbackKind.LEGIT_CONFIRMED)],
)
def test_a_verdict_settles_the_case_and_becomes_feedback_once(
    case: ReviewCase, verdict: Verdict, kind: FeedbackKind
) -> None:
    desk = Desk(case)
    settled = record_verdict(desk, desk, "o-case", verdict, "rev-1", "looked fine", T0 + timedelta(hours=1))
    assert settled.state is CaseState(verdict.value) and settled.verdict_by == "rev-1"
    assert [(f.order_id, f.kind, f.reported_at) for f in desk.sent] == [
        ("o-case", kind, T0 + timedelta(hours=1))
    ]
    assert desk.pending is False


def test_a_failed_send_stays_pending_and_the_retry_sends_the_first_reviewers_feedback(
    case: ReviewCase,
) -> None:
    desk = Desk(case, failing=1)
    with pytest.raises(StoreUnavailableError):
        record_verdict(desk, desk, "o-case", Verdict.FRAUD, "rev-1", None, T0 + timedelta(hours=1))
    assert desk.pending is True and desk.sent == []
    # A second reviewer retries later: the Feedback is the first reviewer's, at the first time
    again = record_verdict(desk, desk, "o-case", Verdict.FRAUD, "rev-2", None, T0 + timedelta(hours=5))
    assert again.verdict_by == "rev-1"
    assert [f.reported_at for f in desk.sent] == [T0 + timedelta(hours=1)]
    assert desk.pending is False

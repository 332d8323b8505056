"""OrderScoring with its ports held in memory: batching, repeats and replays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dozor.adapters.memory import CollectingReviewQueue, InMemoryDecisionStore
from dozor.domain.budget import Deadline
from dozor.domain.contracts import Decision, DecisionKind
from dozor.domain.errors import StoreUnavailableError
from dozor.domain.fraud.features import FEATURE_INDEX
from dozor.domain.fraud.model import FraudModel
from dozor.domain.fraud.scoring import OrderScoring, PendingCommit
from dozor.domain.privacy import PiiHasher
from tests.helpers.orders import build_order

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def model() -> FraudModel:
    return FraudModel.load()


def _service(model: FraudModel) -> tuple[OrderScoring, InMemoryDecisionStore, CollectingReviewQueue]:
    store, queue = InMemoryDecisionStore(), CollectingReviewQueue()
    return OrderScoring(store, queue, model, PiiHasher(b"k")), store, queue


def test_given_an_order_twice_in_one_batch_then_it_is_stored_counted_and_reviewed_once(model) -> None:
    scoring, store, queue = _service(model)
    store.aggregates.items[("buyer#b-watched", "P")] = {"list": "review"}
    order = build_order("o-1", T0, buyer="b-watched")
    results = [scoring.commit(s) for s in scoring.prepare([order, order])]
    assert [r.decision for r in results] == [DecisionKind.REVIEW, DecisionKind.REVIEW]
    assert results[0] == results[1]
    assert list(store.decisions) == ["o-1"]
    assert store.aggregates.items[("buyer#b-watched", "P")]["orders"] == 1
    assert [d.order_id for d, _ in queue.submitted] == ["o-1"]


def test_given_a_batch_out_of_time_order_then_each_order_sees_only_earlier_ones(model) -> None:
    scoring, _, _ = _service(model)
    orders = [build_order(f"o-{i}", T0 + timedelta(minutes=i), card="c-1") for i in range(3)]
    scored = scoring.prepare(list(reversed(orders)))
    seen = {s.order.order_id: s.features for s in scored}

    card_1h = FEATURE_INDEX["card_orders_1h"]
    assert [float(seen[f"o-{i}"][card_1h]) for i in range(3)] == [0.0, 1.0, 2.0]


def test_given_a_stored_decision_then_a_replay_returns_it_and_writes_nothing(model) -> None:
    scoring, store, _ = _service(model)
    first = scoring.score(build_order("o-1", T0))
    before = {k: dict(v) for k, v in store.aggregates.items.items()}
    again = scoring.score(build_order("o-1", T0))
    assert again == first
    assert store.aggregates.items == before


class _Handed:
    """The pending-commits queue, keeping what was handed to it."""

    def __init__(self) -> None:
        self.commits: list[PendingCommit] = []

    def submit(self, pending: PendingCommit, reason: str) -> None:
        self.commits.append(pending)


class _Events:
    def publish(self, decision: Decision) -> None:  # pragma: no cover - the budget runs out first
        raise AssertionError("no time was left for the event")


def test_duties_handed_on_after_the_commit_say_the_order_is_counted(model) -> None:
    # Given a checkout whose budget is spent by the time the decision is stored and counted
    now = [0.0]
    store, handed = InMemoryDecisionStore(), _Handed()
    original = store.commit

    def slow_commit(pending: PendingCommit, fits=None) -> None:  # type: ignore[no-untyped-def]
        original(pending, fits)
        now[0] += 10.0  # the store took all of it

    store.commit = slow_commit  # type: ignore[method-assign]
    scoring = OrderScoring(
        store, CollectingReviewQueue(), model, PiiHasher(b"k"), pending=handed, events=_Events()
    )
    deadline = Deadline(0.8, clock=lambda: now[0])
    scored = scoring.prepare([build_order("o-1", T0)], deadline=deadline)[0]
    # When it commits, with the decision event still to publish
    scoring.commit(scored)
    # Then the event is handed on, saying every counter update is applied
    assert [(p.decision.order_id, p.outbox, p.counted) for p in handed.commits] == [
        ("o-1", frozenset({"event"}), True)
    ]


def test_a_commit_that_stopped_halfway_is_handed_on_naming_its_retired_writers(model) -> None:
    # Given a store whose counting stops halfway and retires its writer
    store, handed = InMemoryDecisionStore(), _Handed()

    def stopped(pending: PendingCommit, fits=None) -> None:  # type: ignore[no-untyped-def]
        names = ("w-old", "w-older")
        raise StoreUnavailableError("budget spent after 3 of 7 counter updates", retired_writers=names)

    store.commit = stopped  # type: ignore[method-assign]
    scoring = OrderScoring(store, CollectingReviewQueue(), model, PiiHasher(b"k"), pending=handed)
    scored = scoring.prepare([build_order("o-2", T0)], deadline=Deadline(0.8))[0]
    # When checkout commits the order, it still gets its decision
    assert scoring.commit(scored) == scored.decision
    # And the hand-off names the writer, with the counting not known to be done
    assert [(p.retired_writers, p.counted, len(p.updates) > 0) for p in handed.commits] == [
        (frozenset({"w-old", "w-older"}), False, True)
    ]

"""An order's counting interrupted halfway is finished exactly once, and never under a live writer.

The decision is stored first, then one idempotent update per entity item under the writer's
slot (`dozor.adapters.dynamodb.decisions`). Here a writer dies after three of its updates; a
second container meets the order again (a pending commit, a redelivery): it leaves the count to
the first writer while that one could still be at it, then finishes it, and a third attempt
finds nothing left to do. Every entity counts the order once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

from dozor.adapters.dynamodb import decisions as store_module
from dozor.adapters.dynamodb.decisions import COUNT, DynamoDecisionStore
from dozor.domain.contracts import Order
from dozor.domain.errors import AlreadyDecidedError, StoreUnavailableError
from dozor.domain.fraud.scoring import PendingCommit
from dozor.handlers.fraud.wiring import dependencies
from tests.helpers.aws_stack import Stack, make_order


class Killed(BaseException):
    """The function's timeout: Lambda stops the invocation wherever it is."""


def _pending(order_id: str) -> PendingCommit:
    scoring = dependencies().scoring
    scored = scoring.prepare(
        [Order.model_validate(make_order(order_id, buyer_id="b-repair"))], within_budget=False
    )[0]
    assert scored.stored_order is not None
    return PendingCommit(
        scored.decision, scored.updates, scored.stored_order, scored.fingerprint, frozenset()
    )


def _store(stack: Stack) -> DynamoDecisionStore:
    return DynamoDecisionStore(
        boto3.client("dynamodb"), stack.table("FeaturesTable"), stack.table("DecisionsTable")
    )


def _failing_update(store: DynamoDecisionStore, number: int, error: BaseException) -> None:
    """The store's `number`-th counter update raises `error` (the ones before it are done)."""
    updates = {"n": 0}

    def fail(**_: Any) -> None:
        updates["n"] += 1
        if updates["n"] == number:
            raise error

    store._client.meta.events.register("before-call.dynamodb.UpdateItem", fail)


def _killed_at_the_fourth_update(store: DynamoDecisionStore, pending: PendingCommit) -> None:
    """The store's invocation times out at its fourth counter update: three done, the rest owed."""
    _failing_update(store, 4, Killed())
    with pytest.raises(Killed):
        store.commit(pending)


def test_a_count_killed_halfway_is_finished_once_and_only_after_its_writer_is_gone(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending = _pending("o-repair-1")
    first, second = _store(stack), _store(stack)
    # Given a writer killed after three of its seven counter updates
    _killed_at_the_fourth_update(first, pending)
    prior = second.get_prior("o-repair-1")
    assert prior is not None and COUNT not in prior.outbox  # the store's own duty stays inside it
    buyer = stack.feature_item("buyer#b-repair", "P")
    assert buyer.get("orders") == 1.0  # the buyer's item was among the first three

    # When another container meets the order while its writer could still be counting
    with pytest.raises(StoreUnavailableError):
        second.commit(pending)  # a pending commit: refused, its queue brings it back later
    assert stack.feature_item("seller#s-shenzhen-42", "P").get("orders", 0.0) in (0.0, 1.0)

    # Then, once every function's timeout has passed, it finishes the counting, once
    later = store_module.time.time() + store_module.REPAIR_GRACE.total_seconds() + 1
    monkeypatch.setattr(store_module.time, "time", lambda: later)
    with pytest.raises(AlreadyDecidedError):
        second.commit(pending)
    with pytest.raises(AlreadyDecidedError):
        _store(stack).commit(pending)  # nothing left to do for a third
    for pk in {u.key[0] for u in pending.updates}:
        assert stack.feature_item(pk, "P")["orders"] == 1.0, pk
    raw = boto3.client("dynamodb").get_item(
        TableName=stack.table("DecisionsTable"), Key={"order_id": {"S": "o-repair-1"}}, ConsistentRead=True
    )["Item"]
    assert COUNT not in raw.get("outbox", {}).get("SS", [])


def test_a_writer_that_failed_finishes_its_own_count_at_once(stack: Stack) -> None:
    # Given a writer whose fourth update failed (it took a new name)
    pending = _pending("o-repair-2")
    store = _store(stack)
    _failing_update(store, 4, EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    named = store.writer
    with pytest.raises(StoreUnavailableError):
        store.commit(pending)
    assert store.writer != named
    # When it meets the order again (the retry in the budget, a redelivery to the same container)
    with pytest.raises(AlreadyDecidedError):
        store.commit(pending)
    # Then every entity counts it once
    for pk in {u.key[0] for u in pending.updates}:
        assert stack.feature_item(pk, "P")["orders"] == 1.0, pk


def test_a_repaired_count_writes_what_the_first_attempt_would_have(stack: Stack) -> None:
    # Given a writer (on some shard of the seller) that failed at its first counter update
    pending = _pending("o-repair-3")
    store = _store(stack)
    _failing_update(store, 1, EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    with pytest.raises(StoreUnavailableError):
        store.commit(pending)
    # When it repairs the count from the stored decision (its entity keys carry the seller's shard)
    with pytest.raises(AlreadyDecidedError):
        store.commit(pending)
    # Then every item holds exactly the order's updates: the links name the seller, not its shard
    for update in pending.updates:
        item = stack.feature_item(update.key[0], update.key[1])
        assert {n: item.get(n) for n in update.add} == update.add, update.key
        assert {n: item.get(n) for n in update.add_to_set} == update.add_to_set, update.key


def test_checkout_meeting_a_count_owed_answers_the_stored_decision_and_leaves_the_count_when_it_fails(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an order whose writer died after three of its counter updates, long enough ago to repair
    pending = _pending("o-repair-4")
    _killed_at_the_fourth_update(_store(stack), pending)
    later = store_module.time.time() + store_module.REPAIR_GRACE.total_seconds() + 1
    monkeypatch.setattr(store_module.time, "time", lambda: later)

    # When checkout meets the order again while the Features table refuses every write
    scoring = dependencies().scoring
    client = scoring._store._client  # type: ignore[attr-defined]
    refused = {"n": 0}

    def refuse(**_: Any) -> None:
        refused["n"] += 1
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    client.meta.events.register("before-call.dynamodb.UpdateItem", refuse)
    order = Order.model_validate(make_order("o-repair-4", buyer_id="b-repair"))
    try:
        scored = scoring.prepare([order])[0]
    finally:
        client.meta.events.unregister("before-call.dynamodb.UpdateItem", refuse)

    # Then it answers the stored decision, not a degraded re-score: the failed repair stays inside
    # the read, which tried once (no retries of a read that had succeeded)
    assert scored.replay and scored.decision == pending.decision
    assert scored.degraded_reason is None
    assert refused["n"] == 1
    # And the next reader, with the table back, finishes the count exactly once
    assert scoring.prepare([order])[0].replay
    for pk in {u.key[0] for u in pending.updates}:
        assert stack.feature_item(pk, "P")["orders"] == 1.0, pk


def _out_of_budget_after(updates: int) -> Any:
    """A checkout budget that fits the decision's put and `updates` counter updates, no more."""
    asked = {"n": 0}

    def fits() -> bool:
        asked["n"] += 1
        return asked["n"] <= updates

    return fits


def test_a_writer_that_hands_an_order_on_names_itself_retired_and_another_container_finishes_at_once(
    stack: Stack,
) -> None:
    # Given checkout's writer, out of budget after three of the order's counter updates
    pending = _pending("o-repair-5")
    checkout, drain = _store(stack), _store(stack)
    named = checkout.writer
    with pytest.raises(StoreUnavailableError) as stopped:
        checkout.commit(pending, fits=_out_of_budget_after(3))
    # Then the error names the writer it counted under, which it will not count under again
    assert named in stopped.value.retired_writers and checkout.writer not in stopped.value.retired_writers
    stored = boto3.client("dynamodb").get_item(
        TableName=stack.table("DecisionsTable"), Key={"order_id": {"S": "o-repair-5"}}, ConsistentRead=True
    )["Item"]
    assert stored["writer"]["S"] == named and COUNT in stored["outbox"]["SS"]
    # When another container applies the pending commit that names it, well within REPAIR_GRACE
    with pytest.raises(AlreadyDecidedError):
        drain.commit(replace(pending, retired_writers=frozenset({named})))
    # Then the counting is finished at once, and exactly once
    for pk in {u.key[0] for u in pending.updates}:
        assert stack.feature_item(pk, "P")["orders"] == 1.0, pk
    with pytest.raises(AlreadyDecidedError):
        _store(stack).commit(pending)  # nothing left for a third, nothing counted twice
    for pk in {u.key[0] for u in pending.updates}:
        assert stack.feature_item(pk, "P")["orders"] == 1.0, pk


def test_a_pending_commit_naming_another_writer_still_waits_for_the_live_one(stack: Stack) -> None:
    # Given a writer killed halfway (it never named itself retired: it may still be running)
    pending = _pending("o-repair-6")
    _killed_at_the_fourth_update(_store(stack), pending)
    # When a pending commit arrives that names some other writer as retired
    with pytest.raises(StoreUnavailableError):
        _store(stack).commit(replace(pending, retired_writers=frozenset({"other"})))
    # Then the count is left to the live writer: the fifth entity onwards is still uncounted
    counted = [stack.feature_item(u.key[0], "P").get("orders", 0.0) for u in pending.updates]
    assert counted.count(1.0) == 3


def test_a_put_that_timed_out_after_landing_is_handed_on_with_its_writer_retired(stack: Stack) -> None:
    # Given checkout's put of the decision taken by DynamoDB, its answer lost (a read timeout)
    pending = _pending("o-repair-7")
    checkout = _store(stack)
    named = checkout.writer

    def lost_answer(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="http://127.0.0.1:1")

    checkout._client.meta.events.register("after-call.dynamodb.PutItem", lost_answer)
    with pytest.raises(StoreUnavailableError) as stopped:
        checkout.commit(pending)
    # Then the hand-off names the writer the decision was stored under, now retired
    assert named in stopped.value.retired_writers and checkout.writer not in stopped.value.retired_writers
    # And another container applying the pending commit counts the order at once, once
    with pytest.raises(AlreadyDecidedError):
        _store(stack).commit(replace(pending, retired_writers=frozenset({named})))
    for pk in {u.key[0] for u in pending.updates}:
        assert stack.feature_item(pk, "P")["orders"] == 1.0, pk


def test_duties_handed_on_after_a_complete_count_are_done_without_waiting_for_the_live_writer(
    stack: Stack,
) -> None:
    # Given checkout's writer, which counted every update but had no time left to strike `count`
    # (it would, before its next write) and handed the order's duties on
    pending = _pending("o-repair-8")
    checkout = _store(stack)
    checkout.commit(pending, fits=_out_of_budget_after(len(pending.updates)))
    assert COUNT in _stored_outbox(stack, "o-repair-8")
    # When another container applies the duties' pending commit, the writer still live
    with pytest.raises(AlreadyDecidedError):
        _store(stack).commit(replace(pending, counted=True))
    # Then it strikes `count` at once (no refusal), and nothing was counted twice
    assert COUNT not in _stored_outbox(stack, "o-repair-8")
    for pk in {u.key[0] for u in pending.updates}:
        assert stack.feature_item(pk, "P")["orders"] == 1.0, pk
    # And without that word, the same record is left to the live writer (refused for now)
    other = _pending("o-repair-9")
    _store(stack).commit(other, fits=_out_of_budget_after(len(other.updates)))
    with pytest.raises(StoreUnavailableError):
        _store(stack).commit(other)


def _stored_outbox(stack: Stack, order_id: str) -> list[str]:
    item = boto3.client("dynamodb").get_item(
        TableName=stack.table("DecisionsTable"), Key={"order_id": {"S": order_id}}, ConsistentRead=True
    )["Item"]
    return list(item.get("outbox", {}).get("SS", []))


def test_a_retry_that_repairs_its_own_count_but_runs_out_before_the_strike_names_the_stored_writer(
    stack: Stack,
) -> None:
    # Given checkout's first attempt, failed at the fourth counter update (its writer renamed)
    pending = _pending("o-repair-10")
    checkout = _store(stack)
    first_name = checkout.writer
    _failing_update(checkout, 4, EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    with pytest.raises(StoreUnavailableError):
        checkout.commit(pending)
    # When the retry in the budget repairs the count under that former name, then runs out of time
    with pytest.raises(StoreUnavailableError) as stopped:
        checkout.commit(pending, fits=_out_of_budget_after(len(pending.updates)))
    # Then the hand-off names the writer the decision is stored under, not the retry's own
    assert first_name in stopped.value.retired_writers
    assert COUNT in _stored_outbox(stack, "o-repair-10")
    # And another container's drain strikes it at once: nothing counted twice
    with pytest.raises(AlreadyDecidedError):
        _store(stack).commit(replace(pending, retired_writers=frozenset({first_name})))
    assert COUNT not in _stored_outbox(stack, "o-repair-10")
    for pk in {u.key[0] for u in pending.updates}:
        assert stack.feature_item(pk, "P")["orders"] == 1.0, pk


def test_a_retry_whose_put_also_timed_out_hands_on_every_name_the_order_may_be_stored_under(
    stack: Stack,
) -> None:
    # Given checkout's put, taken by DynamoDB with its answer lost, and the retry's conditional
    # put (refused: the first one landed) with its answer lost as well
    pending = _pending("o-repair-11")
    checkout = _store(stack)
    first_name = checkout.writer
    lost = {"n": 0}

    def lost_answer(**_: Any) -> None:
        lost["n"] += 1
        if lost["n"] <= 2:
            raise ReadTimeoutError(endpoint_url="http://127.0.0.1:1")

    checkout._client.meta.events.register("after-call.dynamodb.PutItem", lost_answer)
    with pytest.raises(StoreUnavailableError):
        checkout.commit(pending)
    second_name = checkout.writer
    with pytest.raises(StoreUnavailableError) as stopped:
        checkout.commit(pending)
    # Then the hand-off names both attempts' writers: the decision is stored under the first
    assert {first_name, second_name} <= set(stopped.value.retired_writers)
    assert checkout.writer not in stopped.value.retired_writers
    # And another container applying it counts the order at once, once
    with pytest.raises(AlreadyDecidedError):
        _store(stack).commit(replace(pending, retired_writers=frozenset(stopped.value.retired_writers)))
    for pk in {u.key[0] for u in pending.updates}:
        assert stack.feature_item(pk, "P")["orders"] == 1.0, pk

"""Checkout's latency budget and the durable path, on moto with faults injected into botocore.

A hang is simulated where the request leaves the client: the call sleeps for the client's read
timeout and then raises botocore's ReadTimeoutError, as a socket that never answers would. Every
scenario ends with the store back and the pending-commits queue drained: the stored decision,
the counters and the decision events equal what a clean run gives.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from dozor.handlers.fraud import pending_commits, score_order
from dozor.handlers.fraud.wiring import dependencies
from tests.helpers.aws_stack import Stack, api_event, make_order, sqs_event
from tests.helpers.faults import Faults, hang
from tests.helpers.faults import code as _code


def score(stack: Stack, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
    started = time.perf_counter()
    response = score_order.lambda_handler(api_event("POST", "/v1/orders/score", body), stack.context)
    return response["statusCode"], json.loads(response["body"]), time.perf_counter() - started


def _hang(**kwargs: object) -> None:
    hang(dependencies().scoring.budget.read_timeout)(**kwargs)


@pytest.fixture
def faults(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Faults:
    # These tests are about what happens inside a budget, not about 800 ms: three times the
    # deployed budget keeps a loaded test machine's own slowness (parallel workers, a cold
    # interpreter) from deciding which path an order takes. Hangs and timeouts scale with it.
    monkeypatch.setenv("DECISION_BUDGET_MS", "2400")
    dependencies.cache_clear()
    return Faults()


@pytest.fixture
def events(stack: Stack) -> Callable[[], list[dict[str, Any]]]:
    """The decision events published on the bus (a rule delivering them to a queue)."""
    return stack.decision_events("decision-events-probe")


def drain_pending(stack: Stack) -> int:
    """Deliver the pending-commits queue to its function until it is empty; how many applied."""
    bodies = stack.drain("PendingCommitsQueue")
    if bodies:
        result = pending_commits.lambda_handler(sqs_event([json.dumps(b) for b in bodies]), stack.context)
        assert result["batchItemFailures"] == []
    return len(bodies)


def warm_up(stack: Stack) -> None:
    """A first order, so the container is warm (clients built, secret read, models loaded) before
    the fault: on a loaded machine that first order's own counting may not fit its budget and be
    handed on, so its pending commit is applied here and the test's counts start from one order."""
    score(stack, make_order("o-warm"))
    drain_pending(stack)


def test_hanging_store_gives_a_degraded_decision_in_budget_that_converges(
    stack: Stack, faults: Faults, events: Callable[[], list[dict[str, Any]]]
) -> None:
    warm_up(stack)
    with faults.on("before-send.dynamodb.*", _hang):
        status, decision, took = score(stack, make_order("o-r1", minutes_later=1))
        # A replay during the outage gets the same decision (this container remembers it)
        status_again, again, _ = score(stack, make_order("o-r1", minutes_later=1))
    assert status == status_again == 200
    assert decision["degraded"] is True and again == decision
    assert took < dependencies().scoring.budget.seconds
    assert stack.decision_count() == 1  # only the warm-up order
    # When the store is back and the pending queue is drained
    assert drain_pending(stack) == 1
    stored = json.loads(
        score_order.lambda_handler(
            api_event("GET", "/v1/orders/o-r1/decision", path_parameters={"order_id": "o-r1"}), stack.context
        )["body"]
    )
    assert stored == decision
    assert stack.feature_item("seller#s-shenzhen-42", "P")["orders"] == 2
    assert sorted(e["detail"]["order_id"] for e in events()) == ["o-r1", "o-warm"]
    assert drain_pending(stack) == 0  # nothing left owed


def test_throttled_writes_are_retried_in_budget_then_handed_off_and_counted_once(
    stack: Stack, faults: Faults, events: Callable[[], list[dict[str, Any]]]
) -> None:
    warm_up(stack)
    with faults.on("before-call.dynamodb.PutItem", _code("ThrottlingException")):
        status, decision, took = score(stack, make_order("o-r2", minutes_later=1))
    assert status == 200 and decision["degraded"] is False
    assert took < dependencies().scoring.budget.seconds
    assert drain_pending(stack) == 1
    status, replay, _ = score(stack, make_order("o-r2", minutes_later=1))
    assert status == 200 and replay == decision
    assert stack.feature_item("seller#s-shenzhen-42", "P")["orders"] == 2
    assert sorted(e["detail"]["order_id"] for e in events()) == ["o-r2", "o-warm"]


def test_write_conflicts_are_retried_and_stored_directly(stack: Stack, faults: Faults) -> None:
    # A warm container, as in the other budget tests: a cold start's model load and secret read
    # come out of the first order's budget and, on a loaded machine, leave no room for retries
    warm_up(stack)
    calls = {"n": 0}
    # What DynamoDB answers a write to an item a transaction holds (a label being counted)
    conflict = _code("TransactionConflictException")

    def twice(params: dict[str, Any], **kwargs: object) -> Any:
        if b'"pk": {"S": "seller#' in params["body"] or b'"pk":{"S":"seller#' in params["body"]:
            calls["n"] += 1
            return conflict(params=params, **kwargs) if calls["n"] <= 2 else None
        return None

    with faults.on("before-call.dynamodb.UpdateItem", twice):
        status, _, _ = score(stack, make_order("o-r3", minutes_later=1))
    assert status == 200 and calls["n"] == 3
    assert stack.decision_count() == 2
    assert stack.drain("PendingCommitsQueue") == []
    assert stack.feature_item("seller#s-shenzhen-42", "P")["orders"] == 2


def test_store_and_queue_both_down_still_answers_checkout(stack: Stack, faults: Faults) -> None:
    warm_up(stack)
    with (
        faults.on("before-send.dynamodb.*", _hang),
        faults.on("before-call.sqs.SendMessage", _code("ServiceUnavailable")),
    ):
        status, decision, took = score(stack, make_order("o-r4", minutes_later=1))
    assert status == 200 and decision["degraded"] is True
    assert took < dependencies().scoring.budget.seconds


def test_same_order_id_with_other_contents_is_409_and_counted_nowhere(stack: Stack) -> None:
    status, first, _ = score(stack, make_order("o-r5"))
    assert status == 200
    status, body, _ = score(stack, make_order("o-r5", amount=99_000.0))
    assert status == 409, body
    assert "different contents" in json.dumps(body)
    assert stack.feature_item("seller#s-shenzhen-42", "P")["orders"] == 1
    status, replay, _ = score(stack, make_order("o-r5"))
    assert status == 200 and replay == first


def test_review_is_sent_once_however_often_the_order_is_replayed(stack: Stack) -> None:
    deps = dependencies()
    deps.store.set_list_status(f"card#{deps.scoring._hasher('card', 'card-under-review')}", "review")
    for _ in range(3):
        status, decision, _ = score(stack, make_order("o-r6", card="card-under-review"))
        assert status == 200 and decision["decision"] == "REVIEW"
    assert [m["decision"]["order_id"] for m in stack.drain("ReviewQueue")] == ["o-r6"]


def _entity_pks(stack: Stack, order_id: str) -> list[str]:
    """The entities an order is counted in (a sharded seller's shard suffix dropped)."""
    stored = boto3.client("dynamodb").get_item(
        TableName=stack.table("DecisionsTable"), Key={"order_id": {"S": order_id}}
    )["Item"]
    return sorted({e["S"].split("~")[0] for e in stored["entity_keys"]["L"]})


def _stored_writer(stack: Stack, order_id: str) -> str:
    item = boto3.client("dynamodb").get_item(
        TableName=stack.table("DecisionsTable"), Key={"order_id": {"S": order_id}}, ConsistentRead=True
    )["Item"]
    return str(item["writer"]["S"])


@pytest.mark.parametrize("fault", ["slow", "hang"])
def test_counter_updates_that_outlast_the_budget_are_handed_on_and_counted_once(
    stack: Stack, faults: Faults, events: Callable[[], list[dict[str, Any]]], fault: str
) -> None:
    # Given a warm container, and every counter update of the next order slow (it lands after
    # three quarters of a read timeout: all of them one after another would take ~2x the budget)
    # or hanging (a read timeout each); the decision's own put is not touched
    warm_up(stack)
    budget = dependencies().scoring.budget
    applied = {"n": 0}

    features = stack.table("FeaturesTable").encode()

    def counter_update(params: dict[str, Any], **kwargs: object) -> None:
        if features not in params["body"]:
            return  # the decision's outbox or the caller's throttle count, not an entity's counters
        if fault == "hang":
            hang(budget.read_timeout)(**kwargs)
        time.sleep(budget.read_timeout * 0.75)
        applied["n"] += 1

    # When checkout scores it
    with faults.on("before-call.dynamodb.UpdateItem", counter_update):
        status, decision, took = score(stack, make_order("o-r7", minutes_later=1))
    # Then it answers in budget with the model's decision, stored, its counting not finished
    assert status == 200 and decision["degraded"] is False
    assert took < budget.seconds
    assert stack.decision_count() == 2
    entities = _entity_pks(stack, "o-r7")
    assert len(entities) == 7  # buyer, seller, card, device, ip, email, address
    assert applied["n"] < len(entities)
    counted = [stack.feature_item(pk, "P")["orders"] for pk in entities]
    assert min(counted) == 1 and set(counted) <= {1, 2}
    # And the hand-off names the writer that stopped (retired: another container may finish at once)
    handed = stack.drain("PendingCommitsQueue")
    assert [b["decision"]["order_id"] for b in handed] == ["o-r7"]
    assert _stored_writer(stack, "o-r7") in handed[0]["retired_writers"]
    assert dependencies().scoring._store.writer not in handed[0]["retired_writers"]  # type: ignore[attr-defined]
    # And once the pending-commits function has run, every entity counts the order exactly once
    result = pending_commits.lambda_handler(sqs_event([json.dumps(b) for b in handed]), stack.context)
    assert result["batchItemFailures"] == []
    assert [stack.feature_item(pk, "P")["orders"] for pk in entities] == [2] * len(entities)
    assert drain_pending(stack) == 0  # nothing left owed
    status, replay, _ = score(stack, make_order("o-r7", minutes_later=1))
    assert status == 200 and replay == decision
    assert [stack.feature_item(pk, "P")["orders"] for pk in entities] == [2] * len(entities)
    assert sorted(e["detail"]["order_id"] for e in events()) == ["o-r7", "o-warm"]

"""ScoreOrderFunction and OrderEventsFunction in-process on moto, resources from template.yaml."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import boto3
import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from dozor.handlers.fraud import order_events, pending_commits, score_order
from dozor.handlers.fraud.wiring import dependencies
from tests.helpers.aws_stack import Stack, api_event, make_order, sqs_event


def score(stack: Stack, body: dict | str) -> tuple[int, dict]:
    response = score_order.lambda_handler(api_event("POST", "/v1/orders/score", body), stack.context)
    return response["statusCode"], json.loads(response["body"])


def test_new_order_gets_an_explained_decision_that_can_be_read_back(stack: Stack) -> None:
    # Given a realistic order
    order = make_order("o-1001")
    # When checkout scores it
    status, decision = score(stack, order)
    # Then it gets a complete decision
    assert status == 200
    assert decision["order_id"] == "o-1001"
    assert decision["decision"] in {"APPROVE", "REVIEW", "DECLINE"}
    assert 0.0 <= decision["score"] <= 1.0
    assert decision["model_version"].startswith("fraud-")
    assert decision["degraded"] is False
    assert decision["reasons"] and all(r["text"] and r["feature"] for r in decision["reasons"])
    # And the stored decision is what GET returns
    response = score_order.lambda_handler(
        api_event("GET", "/v1/orders/o-1001/decision", path_parameters={"order_id": "o-1001"}), stack.context
    )
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == decision


def test_unknown_order_decision_is_404(stack: Stack) -> None:
    response = score_order.lambda_handler(
        api_event("GET", "/v1/orders/nope/decision", path_parameters={"order_id": "nope"}), stack.context
    )
    assert response["statusCode"] == 404


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda o: o["buyer"].pop("id"), "buyer.id"),
        (lambda o: o.update(amount=-5), "amount"),
        (lambda o: o.update(amount=1e12), "amount"),
        (lambda o: o.update(currency="XYZ"), "currency"),
        (lambda o: o.update(created_at="yesterday"), "created_at"),
        (lambda o: o.update(created_at="2026-11-20T10:00:00"), "created_at"),  # no time zone
        (lambda o: o.pop("seller"), "seller"),
        (lambda o: o["items"][0].update(quantity="many"), "items.0.quantity"),
    ],
)
def test_invalid_order_is_422_naming_the_field(stack: Stack, mutate, field: str) -> None:
    order = make_order("o-bad")
    mutate(order)
    status, body = score(stack, order)
    assert status == 422
    assert body["error"]["code"] == "invalid_request"
    assert field in [e["field"] for e in body["error"]["fields"]]
    assert stack.decision_count() == 0


def test_malformed_json_is_422_and_oversize_is_413(stack: Stack) -> None:
    status, _ = score(stack, '{"order_id": ')
    assert status == 422
    status, _ = score(stack, json.dumps(make_order("o-big")) + " " * 70_000)
    assert status == 413
    assert stack.decision_count() == 0


def test_replayed_order_returns_first_decision_and_counts_once(stack: Stack) -> None:
    order = make_order("o-2001")
    _, first = score(stack, order)
    _, second = score(stack, order)
    assert second == first
    buyer_profile = stack.feature_item(f"buyer#{order['buyer']['id']}", "P")
    assert buyer_profile["orders"] == 1
    # A second, different order by the same buyer sees exactly one earlier order.
    _, third = score(stack, make_order("o-2002", minutes_later=5))
    assert stack.feature_item(f"buyer#{order['buyer']['id']}", "P")["orders"] == 2
    assert third["order_id"] == "o-2002"


def test_new_order_costs_one_read_one_write_per_item_and_one_event(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a decision costs when everything fits: each write is started only while it and a
    # hand-off fit the budget, and a loaded test machine (two workers, a stall) must not decide
    # how many of them this order makes
    monkeypatch.setenv("DECISION_BUDGET_MS", "10000")  # the most the settings allow
    dependencies.cache_clear()
    score(stack, make_order("o-3000"))  # warm: secret fetched, clients built
    stack.calls.clear()
    score(stack, make_order("o-3001", minutes_later=1))
    dynamo = Counter(op for service, op in stack.calls if service == "dynamodb")
    # The decision, then one update per entity (buyer, seller, card, device, ip, email, address);
    # the decision's outbox (its event, its counting) is struck off once, after the publish.
    assert dynamo == Counter({"BatchGetItem": 1, "PutItem": 1, "UpdateItem": 7 + 1})
    assert [op for service, op in stack.calls if service == "events"] == ["PutEvents"]
    assert all(service in {"dynamodb", "sqs", "events"} for service, _ in stack.calls)


def test_review_decision_is_published_once(stack: Stack) -> None:
    # Given a card ops put on the review list, and an otherwise ordinary order paid with it
    deps = dependencies()
    deps.store.set_list_status(f"card#{deps.scoring._hasher('card', 'card-under-review')}", "review")
    order = make_order("o-4001", card="card-under-review")
    # When checkout scores it
    stack.calls.clear()
    status, decision = score(stack, order)
    # Then it goes to review, and the review queue gets it exactly once
    assert status == 200
    assert decision["decision"] == "REVIEW"
    assert "LIST_REVIEW_CARD" in decision["rules"]
    assert Counter(op for _, op in stack.calls)["SendMessage"] == 1
    assert [m["decision"]["order_id"] for m in stack.drain("ReviewQueue")] == ["o-4001"]
    # And the same order delivered twice in one SQS batch is neither stored nor sent again
    stack.calls.clear()
    event = sqs_event([json.dumps(make_order("o-4002", card="card-under-review"))] * 2)
    assert order_events.lambda_handler(event, stack.context)["batchItemFailures"] == []
    assert [m["decision"]["order_id"] for m in stack.drain("ReviewQueue")] == ["o-4002"]
    assert Counter(op for _, op in stack.calls)["PutItem"] == 1  # one decision stored


def test_block_list_declines(stack: Stack) -> None:
    # A warm container first: a cold one reads the model and the hash key inside the first order's
    # budget, and on a loaded machine that order is answered degraded (the list not read at all)
    score(stack, make_order("o-5000", card="card-warm-up", buyer_id="b-warm-up"))
    order = make_order("o-5001", card="card-on-block-list")
    deps = dependencies()
    entity = deps.scoring._hasher("card", "card-on-block-list")  # the hasher ops tooling uses
    deps.store.set_list_status(f"card#{entity}", "block")
    _, decision = score(stack, order)
    assert decision["decision"] == "DECLINE"
    assert "LIST_BLOCK_CARD" in decision["rules"]


def test_openapi_document_lists_the_routes(stack: Stack) -> None:
    response = score_order.lambda_handler(api_event("GET", "/v1/openapi.json"), stack.context)
    doc = json.loads(response["body"])
    assert "/v1/orders/score" in doc["paths"]
    assert "Order" in json.dumps(doc["components"])


def test_batch_with_poison_record_quarantines_only_it(stack: Stack) -> None:
    bodies = [json.dumps(make_order(f"o-60{i}", minutes_later=i)) for i in range(4)]
    bodies.insert(2, '{"order_id": "o-poison", "amount": "lots"}')
    event = sqs_event(bodies)
    result = order_events.lambda_handler(event, stack.context)
    assert result["batchItemFailures"] == []
    quarantined = stack.drain("QuarantineQueue")
    assert [q["message_id"] for q in quarantined] == [event["Records"][2]["messageId"]]
    assert stack.decision_count() == 4


def test_batch_sees_earlier_orders_of_the_same_batch(stack: Stack) -> None:
    orders = [make_order(f"o-70{i}", minutes_later=i, card="shared-card") for i in range(3)]
    event = sqs_event([json.dumps(o) for o in reversed(orders)])  # arrival order is not time order
    assert order_events.lambda_handler(event, stack.context)["batchItemFailures"] == []
    profile = stack.feature_item(f"buyer#{orders[0]['buyer']['id']}", "P")
    assert profile["orders"] == 3
    # Replaying the same batch (SQS redelivery) changes nothing.
    assert order_events.lambda_handler(event, stack.context)["batchItemFailures"] == []
    assert stack.feature_item(f"buyer#{orders[0]['buyer']['id']}", "P")["orders"] == 3
    assert stack.decision_count() == 3


def test_eventbridge_envelope_is_unwrapped(stack: Stack) -> None:
    envelope = {
        "version": "0",
        "id": "e-1",
        "detail-type": "OrderPlaced",
        "source": "marketplace.orders",
        "account": "123456789012",
        "time": "2026-11-20T10:00:00Z",
        "region": "eu-central-1",
        "resources": [],
        "detail": make_order("o-8001"),
    }
    result = order_events.lambda_handler(sqs_event([json.dumps(envelope)]), stack.context)
    assert result["batchItemFailures"] == []
    assert stack.decision_count() == 1


def _throttled(**_: object) -> tuple[object, dict]:
    error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
    return type("Response", (), {"status_code": 400, "headers": {}})(), error


def _raising(error: Exception) -> Callable[..., None]:
    def send(**_: object) -> None:
        raise error

    return send


# Each fault as botocore surfaces it, injected where the HTTP request leaves the client, so
# botocore's own retries run first: a throttled answer, a read that never returns, a refused
# connection, a connect that times out.
READ_FAULTS = {
    "throttled": ("before-call", _throttled),
    "read timeout": ("before-send", _raising(ReadTimeoutError(endpoint_url="http://127.0.0.1:1"))),
    "connection refused": (
        "before-send",
        _raising(EndpointConnectionError(endpoint_url="http://127.0.0.1:1")),
    ),
    "connect timeout": ("before-send", _raising(ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"))),
}


@pytest.mark.parametrize("fault", list(READ_FAULTS))
def test_unreadable_feature_store_degrades_instead_of_failing_checkout(stack: Stack, fault: str) -> None:
    # Given every read of the feature store fails this way
    stage, handler = READ_FAULTS[fault]
    event = f"{stage}.dynamodb.BatchGetItem"
    session = boto3._get_default_session()  # the session the handlers' clients come from
    session.events.register_first(event, handler)
    try:
        status, decision = score(stack, make_order("o-9101"))
    finally:
        session.events.unregister(event, handler)
    # Then checkout still gets a decision, flagged as made without the aggregates, and it is stored:
    # at once, or, when the failed reads left no time in the budget for the write (as on a loaded
    # machine), by the pending-commits queue the budget hands it to
    assert status == 200, decision
    assert decision["degraded"] is True
    handed_off = stack.drain("PendingCommitsQueue")
    if handed_off:
        result = pending_commits.lambda_handler(sqs_event([json.dumps(b) for b in handed_off]), stack.context)
        assert result["batchItemFailures"] == []
    assert stack.decision_count() == 1

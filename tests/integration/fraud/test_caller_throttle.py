"""Per-caller throttling on moto: the scoring handler with template.yaml's CallerThrottle table.

A noisy caller gets 429s (with Retry-After and the one error body) while another caller's
requests still pass; two containers share a caller's count through the table; the counter
store timing out, refusing or throttling lets requests through (fail-open) and checkout still
gets its decision.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from dozor.adapters.dynamodb.throttle import DynamoCallerCounts
from dozor.domain.budget import Budget
from dozor.domain.throttle import CallerLimit, CallerLimiter
from dozor.handlers.fraud import score_order
from dozor.handlers.fraud.wiring import dependencies
from dozor.handlers.http_throttle import caller_limiter, caller_of
from dozor.handlers.wiring import side_call_config
from tests.helpers.aws_stack import Stack, api_event, make_order
from tests.helpers.faults import Faults, code, hang, refused, sent

NOISY = "arn:aws:sts::123456789012:assumed-role/noisy-checkout/i-0abc"
QUIET = "arn:aws:sts::123456789012:assumed-role/payments/i-0def"


def signed_by(arn: str, event: dict[str, Any]) -> dict[str, Any]:
    event["requestContext"]["authorizer"] = {"iam": {"userArn": arn, "accountId": "123456789012"}}
    return event


def score(stack: Stack, arn: str, order_id: str) -> dict[str, Any]:
    event = signed_by(arn, api_event("POST", "/v1/orders/score", make_order(order_id)))
    return score_order.lambda_handler(event, stack.context)  # type: ignore[no-any-return]


@pytest.fixture
def limited(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Bursts of 3 for every caller, and a rate so low nothing refills during the test."""
    monkeypatch.setenv("CALLER_RATE_LIMIT", "0.0001")
    monkeypatch.setenv("CALLER_BURST_LIMIT", "3")
    monkeypatch.setenv("CALLER_THROTTLE_SYNC_EVERY", "2")
    caller_limiter.cache_clear()
    yield stack
    caller_limiter.cache_clear()


def test_a_noisy_caller_gets_429s_while_another_caller_still_passes(limited: Stack) -> None:
    noisy = [score(limited, NOISY.replace("0abc", f"{i}"), f"o-n{i}") for i in range(6)]
    quiet = [score(limited, QUIET, f"o-q{i}") for i in range(3)]
    # Every session of the noisy role is one caller: its burst of 3, then 429s
    assert [r["statusCode"] for r in noisy] == [200, 200, 200, 429, 429, 429]
    refused = noisy[-1]
    assert int(refused["headers"]["Retry-After"]) >= 1
    assert json.loads(refused["body"])["error"]["code"] == "throttled"
    assert set(json.loads(refused["body"])["error"]) == {"code", "message", "fields"}
    assert [r["statusCode"] for r in quiet] == [200, 200, 200]
    assert limited.decision_count() == 6  # a throttled order is not scored, stored or counted
    # The noisy role's admitted requests were added to the shared count
    counts = boto3.client("dynamodb").scan(TableName=limited.table("CallerThrottleTable"))["Items"]
    by_caller = {item["pk"]["S"].rsplit("#", 1)[0]: int(item["hits"]["N"]) for item in counts}
    assert by_caller["arn:aws:iam::123456789012:role/noisy-checkout"] >= 2


def test_reading_decisions_counts_against_the_same_caller(limited: Stack) -> None:
    score(limited, NOISY, "o-r1")
    event = api_event("GET", "/v1/orders/o-r1/decision", path_parameters={"order_id": "o-r1"})
    statuses = [
        score_order.lambda_handler(signed_by(NOISY, event), limited.context)["statusCode"] for _ in range(4)
    ]
    assert statuses == [200, 200, 429, 429]


def test_containers_share_a_callers_count_through_the_table(stack: Stack) -> None:
    """Two containers (two limiters) on the one table: what one admitted, the other sees."""
    budget = Budget(5.0)
    table = stack.table("CallerThrottleTable")
    clock = {"wall": 1_000_000.0, "mono": 50.0}

    def container() -> CallerLimiter:
        counts = DynamoCallerCounts(boto3.client("dynamodb", config=side_call_config(budget)), table, 10)
        return CallerLimiter(
            CallerLimit(rate=0.1, burst=10),  # 10 requests per 10 s window across containers
            counts,
            sync_every=5,
            monotonic=lambda: clock["mono"],
            wall=lambda: clock["wall"],
        )

    first, second = container(), container()
    caller = "arn:aws:iam::123456789012:role/checkout"
    admitted = [first.admit(caller) for _ in range(11)]  # its burst of 10, then its bucket is empty
    assert [v.allowed for v in admitted] == [True] * 10 + [False]
    clock["mono"] += 0.1
    clock["wall"] += 0.1
    # The second container's own bucket holds 10, but it learns the first one's 10 at its first
    # request: the window's allowance is spent, it refuses until the window slides on
    verdicts = [second.admit(caller) for _ in range(3)]
    assert [v.allowed for v in verdicts] == [False, False, False]
    assert 0 < verdicts[0].retry_after <= 10
    # Writes: one per sync (a container's first request in the window, then every 5 held)
    assert sum(v.wrote for v in admitted + verdicts) == 4
    # Another caller is untouched
    assert second.admit("arn:aws:iam::123456789012:role/payments").allowed


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(hang(0.05), id="timeout"),
        pytest.param(refused, id="refused"),
        pytest.param(code("ProvisionedThroughputExceededException"), id="throttled"),
        pytest.param(code("InternalServerError"), id="server-error"),
    ],
)
def test_a_failing_counter_store_lets_checkout_through(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, fault: Any
) -> None:
    monkeypatch.setenv("CALLER_THROTTLE_SYNC_EVERY", "1")  # every request would write
    caller_limiter.cache_clear()
    faults = Faults()
    dependencies.cache_clear()
    table, tried = stack.table("CallerThrottleTable"), []

    def on_the_counts(params: dict[str, Any], **kwargs: Any) -> Any:
        if table not in sent(params):  # the request as it leaves
            return None
        tried.append(1)
        return fault(params=params, **kwargs)

    try:
        with faults.on("before-call.dynamodb.UpdateItem", on_the_counts):
            answers = [score(stack, NOISY, f"o-f{i}") for i in range(4)]
    finally:
        caller_limiter.cache_clear()
    assert [a["statusCode"] for a in answers] == [200, 200, 200, 200]
    assert [json.loads(a["body"])["degraded"] for a in answers] == [False] * 4
    # One failed write, then the store is left alone for a while: not one slow call per order
    assert len(tried) == 1


def test_the_caller_is_the_role_the_jwt_client_or_the_address() -> None:
    assert (
        caller_of(signed_by(NOISY, api_event("GET", "/x"))) == "arn:aws:iam::123456789012:role/noisy-checkout"
    )
    user = "arn:aws:iam::123456789012:user/ci"
    assert caller_of(signed_by(user, api_event("GET", "/x"))) == user
    jwt = api_event("GET", "/x")
    jwt["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": "u-1", "client_id": "shop-7"}}}
    assert caller_of(jwt) == "jwt:shop-7"
    jwt["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": "u-1"}}}
    assert caller_of(jwt) == "jwt:u-1"
    assert caller_of(api_event("GET", "/x")) == "ip:3.121.64.17"

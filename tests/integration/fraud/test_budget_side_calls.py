"""The calls checkout makes before its decision, inside the decision budget: the hash key a cold
container reads from Secrets Manager, and the model registry's pointers in SSM. Faults are
injected into botocore (tests/helpers/faults.py) on moto.

- A warm container whose SSM refresh hangs or is refused keeps its models and decides in budget,
  not degraded.
- A cold container whose Secrets Manager hangs answers 503 (retry) within the budget, as
  documented; the next request reads the key and is decided.
- A cold container whose SSM is refused serves the packaged model (the documented fallback).
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from dozor.handlers.fraud import pending_commits, score_order
from dozor.handlers.fraud.wiring import dependencies
from dozor.handlers.wiring import side_call_config
from tests.helpers.aws_stack import Stack, api_event, make_order, sqs_event
from tests.helpers.faults import Faults, code, hang, refused


def score(stack: Stack, order_id: str, minutes: int = 0) -> tuple[int, dict[str, Any], float]:
    started = time.perf_counter()
    event = api_event("POST", "/v1/orders/score", make_order(order_id, minutes_later=minutes))
    response = score_order.lambda_handler(event, stack.context)
    return response["statusCode"], json.loads(response["body"]), time.perf_counter() - started


@pytest.fixture
def faults(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Faults:
    # As in test_resilience: three times the deployed budget, so a loaded machine's own
    # slowness does not decide the path; every pointer read is a refresh (no cache).
    monkeypatch.setenv("DECISION_BUDGET_MS", "2400")
    monkeypatch.setenv("MODEL_REFRESH_SECONDS", "0")
    dependencies.cache_clear()
    # moto builds a service's backend on its first call: not what these tests measure
    boto3.client("secretsmanager").list_secrets()
    boto3.client("ssm").describe_parameters()
    return Faults()


def ssm_hang(**kwargs: Any) -> None:
    hang(side_call_config(dependencies().scoring.budget).read_timeout)(**kwargs)


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(ssm_hang, id="hang"),
        pytest.param(refused, id="refused"),
        pytest.param(code("ThrottlingException"), id="throttled"),
    ],
)
def test_a_warm_container_whose_registry_fails_keeps_its_model_and_decides_in_budget(
    stack: Stack, faults: Faults, fault: Any
) -> None:
    status, warm, _ = score(stack, "o-s0")
    assert status == 200
    with faults.on("before-call.ssm.GetParameter", fault):
        status, decision, took = score(stack, "o-s1", minutes=1)
    assert status == 200
    assert decision["degraded"] is False  # the pointer read cost at most the budget's slack
    assert decision["model_version"] == warm["model_version"]  # the last known model
    assert took < dependencies().scoring.budget.seconds


def test_a_cold_container_without_its_hash_key_answers_503_in_budget_then_recovers(
    stack: Stack, faults: Faults
) -> None:
    dependencies()  # built (settings, model, clients): no call to Secrets Manager yet
    read_timeout = dependencies().scoring.budget.read_timeout
    with faults.on("before-call.secrets-manager.GetSecretValue", hang(read_timeout)):
        status, body, took = score(stack, "o-k1")
    assert status == 503 and body["error"]["code"] == "unavailable"
    assert took < dependencies().scoring.budget.seconds
    assert stack.decision_count() == 0
    # Secrets Manager is back: the next request reads the key and is decided, and its decision is
    # stored: at once, or, when the cold reads left no time in the budget for the write (as on a
    # loaded machine), by the pending-commits queue the budget hands it to
    status, decision, _ = score(stack, "o-k1")
    assert status == 200 and decision["order_id"] == "o-k1"
    handed_off = stack.drain("PendingCommitsQueue")
    if handed_off:
        result = pending_commits.lambda_handler(sqs_event([json.dumps(b) for b in handed_off]), stack.context)
        assert result["batchItemFailures"] == []
    assert stack.decision_count() == 1


def test_a_cold_container_whose_registry_is_refused_serves_the_packaged_model(
    stack: Stack, faults: Faults
) -> None:
    with faults.on("before-call.ssm.GetParameter", refused):
        status, decision, _ = score(stack, "o-p1")
    assert status == 200
    assert decision["model_version"] == dependencies().model.version

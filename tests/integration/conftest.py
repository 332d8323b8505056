"""Fixtures of the integration tests: the handlers on moto with template.yaml's resources."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from dozor.handlers.fraud.wiring import dependencies
from dozor.handlers.http_throttle import caller_limiter
from dozor_local.invoke import lambda_context
from dozor_local.stack import LocalStack
from tests.helpers.aws_stack import TEMPLATE, Stack


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        local = LocalStack.deploy(TEMPLATE)
        for name, value in local.env_for("ScoreOrderFunction").items():
            monkeypatch.setenv(name, value)
        # The deployed 800 ms budget is for Lambda; a test machine running the suite in parallel
        # (a cold interpreter, the other worker) can spend that on itself and hand an order's
        # review or event to the pending queue. Tests of the budget set their own.
        monkeypatch.setenv("DECISION_BUDGET_MS", "5000")
        calls: list[tuple[str, str]] = []
        session = boto3._get_default_session()  # where the handlers' clients come from
        session.events.register(
            "before-call.*.*", lambda model, **_: calls.append((model.service_model.service_name, model.name))
        )
        dependencies.cache_clear()
        caller_limiter.cache_clear()  # its counter table is this stack's
        # moto builds a service's backend on its first call (a second or more on a loaded machine):
        # done here, not inside the first order's decision budget (which reads the hash key and the
        # registry's pointers since they moved inside it)
        boto3.client("secretsmanager").list_secrets()
        boto3.client("ssm").describe_parameters()
        context = lambda_context(local.function("ScoreOrderFunction"), local.env_for("ScoreOrderFunction"))
        yield Stack(local, context, calls)
        dependencies.cache_clear()
        parameters.clear_caches()
    boto3.DEFAULT_SESSION = None

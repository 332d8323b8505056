"""Checkout's side calls and store calls make one attempt each: the shadow tally's flush (on the
request path, within the side-call cost; a refusal costs a log line, the counts wait for the next
flush) and the store client sized to the budget."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from dozor.domain.budget import Budget
from dozor.handlers.fraud import shadow
from dozor.handlers.wiring import aws_client
from tests.helpers.faults import Faults, refused


@pytest.fixture
def tally_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("SHADOW_TALLY_TABLE_NAME", "dozor-shadow-tally")
    monkeypatch.setenv("DECISION_BUDGET_MS", "800")
    with mock_aws():
        faults = Faults()  # hooked before the tally builds its client
        shadow.shadow_tally.cache_clear()
        yield faults
        shadow.shadow_tally.cache_clear()


def test_the_flush_makes_one_attempt_within_checkouts_side_call_cost(tally_env: Faults) -> None:
    # Given a DynamoDB endpoint that refuses every connection, counting each attempt
    attempts: list[str] = []

    def refuse(**kwargs: Any) -> None:
        attempts.append("attempt")
        refused(**kwargs)

    tally = shadow.shadow_tally()
    assert tally is not None
    config = tally._client.meta.config
    # Then the client's worst case is the side-call cost, not the store's timeouts and retries
    assert config.connect_timeout + config.read_timeout <= Budget(0.8).side_call_cost
    # When checkout counts an order both models scored (the container's first: it flushes)
    with tally_env.on("before-send.dynamodb.UpdateItem", refuse):
        shadow.count_shadow("fraud-a", "fraud-b", differs=True)
    # Then it did not raise, tried once, and kept the count for the next flush
    assert attempts == ["attempt"]
    assert list(tally._pending.values()) == [[1, 1]]


def test_checkouts_store_client_makes_one_attempt_per_call_and_leaves_retries_to_the_budget(
    tally_env: Faults,
) -> None:
    # botocore's retries={"max_attempts": 1} means one retry after the first try: two attempts,
    # twice the worst case the budget plans for. The domain retries only while a retry still fits.
    attempts: list[str] = []

    def refuse(**kwargs: Any) -> None:
        attempts.append("attempt")
        refused(**kwargs)

    client = aws_client("dynamodb", Budget(0.8))
    with tally_env.on("before-send.dynamodb.GetItem", refuse), pytest.raises(EndpointConnectionError):
        client.get_item(TableName="dozor-features", Key={"pk": {"S": "buyer#b-1"}, "sk": {"S": "P"}})
    assert attempts == ["attempt"]

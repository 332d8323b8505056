"""The per-caller throttle and the sweeper's poison alarm as the SAM transform makes them, offline:
the counter table, the scoring function's limits and its one extra permission."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dozor.settings import ThrottleSettings
from dozor_local.sam import load_template, translate

TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"


def translated() -> dict[str, Any]:
    return translate(load_template(TEMPLATE), region="eu-central-1", parameters={})


def test_the_scoring_function_counts_callers_in_its_own_table_and_nothing_more() -> None:
    template = translated()
    resources, parameters = template["Resources"], template["Parameters"]
    table = resources["CallerThrottleTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    env = resources["ScoreOrderFunction"]["Properties"]["Environment"]["Variables"]
    assert env["CALLER_THROTTLE_TABLE_NAME"] == {"Ref": "CallerThrottleTable"}
    assert env["CALLER_RATE_LIMIT"] == {"Ref": "CallerRateLimit"}
    assert env["CALLER_BURST_LIMIT"] == {"Ref": "CallerBurstLimit"}
    assert env["CALLER_LIMIT_OVERRIDES"] == {"Ref": "CallerLimitOverrides"}
    # One caller's default share is below the route's: no single caller can use the route up
    assert parameters["CallerRateLimit"]["Default"] < parameters["ApiThrottleRateLimit"]["Default"]
    statements = [
        s
        for policy in resources["ScoreOrderFunctionRole"]["Properties"]["Policies"]
        for s in policy["PolicyDocument"]["Statement"]
    ]
    on_table = [s for s in statements if s["Resource"] == {"Fn::GetAtt": ["CallerThrottleTable", "Arn"]}]
    assert [s["Action"] for s in on_table] == ["dynamodb:UpdateItem"]
    alarm = resources["ParcelsPoisonedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("Dozor", "ParcelsPoisoned")


def test_limit_overrides_are_read_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    role = "arn:aws:iam::123456789012:role/checkout"
    monkeypatch.setenv("CALLER_LIMIT_OVERRIDES", json.dumps({role: {"rate": 80, "burst": 160}}))
    settings = ThrottleSettings()
    assert settings.caller_limit_overrides[role].rate == 80
    assert settings.caller_rate_limit == 50  # the others keep the default
    monkeypatch.setenv("CALLER_LIMIT_OVERRIDES", json.dumps({role: {"rate": 0, "burst": 1}}))
    with pytest.raises(ValueError, match="rate"):
        ThrottleSettings()

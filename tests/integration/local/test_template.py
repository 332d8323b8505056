"""template.yaml: lint-clean, least privilege, and the operational rules the design asks for."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dozor_local.sam import load_template

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in function.get("Policies", []) for s in policy.get("Statement", [])]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _target(value: Any) -> str:
    """The logical id behind `!Ref X` / `!GetAtt X.Arn`."""
    if "Ref" in value:
        return str(value["Ref"])
    return str(value["Fn::GetAtt"][0])


def test_cfn_lint_finds_nothing_even_informational() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"

    result = subprocess.run(
        [str(cfn_lint), "--include-checks", "I", "--", str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert (result.returncode, result.stdout) == (0, ""), result.stderr


def test_every_handler_names_a_function_that_exists(template: dict[str, Any]) -> None:
    for name, function in _functions(template).items():
        module, _, attribute = function["Handler"].rpartition(".")
        source = ROOT / "functions" / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{name}: {source} is missing"
        defined = {
            node.name for node in ast.parse(source.read_text()).body if isinstance(node, ast.FunctionDef)
        }
        assert attribute in defined, f"{name}: {module} defines no {attribute}"


def test_policies_name_actions_and_resources_explicitly(template: dict[str, Any]) -> None:
    for name, function in _functions(template).items():
        statements = _statements(function)
        assert statements, f"{name} has no explicit policy statements"
        for statement in statements:
            assert not any("*" in action for action in _as_list(statement["Action"])), (name, statement)
            assert "*" not in _as_list(statement["Resource"]), (name, statement)


def test_transactions_carry_the_per_item_actions_they_need(template: dict[str, Any]) -> None:
    for name, function in _functions(template).items():
        actions = {a for s in _statements(function) for a in _as_list(s["Action"])}
        if "dynamodb:TransactWriteItems" in actions:
            assert {"dynamodb:PutItem", "dynamodb:UpdateItem"} <= actions, name


def test_queue_visibility_is_at_least_six_times_its_consumers_timeout(template: dict[str, Any]) -> None:
    default_timeout = template["Globals"]["Function"]["Timeout"]
    consumed = 0
    for function in _functions(template).values():
        for event in function.get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            queue = template["Resources"][_target(event["Properties"]["Queue"])]["Properties"]
            assert queue["VisibilityTimeout"] >= 6 * function.get("Timeout", default_timeout)
            consumed += 1
    assert consumed


def test_every_consumed_queue_has_a_dlq_and_every_dlq_an_alarm(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    queues = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    dlqs = {
        _target(q["RedrivePolicy"]["deadLetterTargetArn"]) for q in queues.values() if "RedrivePolicy" in q
    }
    consumed = {
        _target(e["Properties"]["Queue"])
        for f in _functions(template).values()
        for e in f.get("Events", {}).values()
        if e["Type"] == "SQS"
    }
    watched = {
        _target(d["Value"])
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        for d in r["Properties"].get("Dimensions", [])
        if d["Name"] == "QueueName"
    }

    assert consumed <= {name for name, q in queues.items() if "RedrivePolicy" in q}
    assert dlqs <= watched
    # SQS expires a dead letter by its first enqueue: a DLQ keeps at least as long as its source.
    for q in queues.values():
        if "RedrivePolicy" in q:
            dlq = queues[_target(q["RedrivePolicy"]["deadLetterTargetArn"])]
            assert dlq["MessageRetentionPeriod"] >= q.get("MessageRetentionPeriod", 345600)
    assert all(q.get("SqsManagedSseEnabled") or q.get("KmsMasterKeyId") for q in queues.values())


def test_tables_are_encrypted_recoverable_and_expire_items(template: dict[str, Any]) -> None:
    tables = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]

    assert tables
    for table in tables:
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["SSESpecification"] == {"SSEEnabled": True}
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}

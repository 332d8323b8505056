"""`dozor invoke` and `invoke_handler`: a handler run the way Lambda runs it, on the local stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from dozor_local.invoke import invoke_handler
from dozor_local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "events"
DOZOR = Path(sys.executable).parent / "dozor"
PACKAGED_MODEL = ROOT / "functions" / "dozor" / "model" / "model.ubj"

HANDLERS = """
import json, os, sys, time
from decimal import Decimal

def echo(event, context):
    print("a log line on stdout, as powertools writes it")
    return {
        "event": event,
        "queue": os.environ["QUEUE_URL"],
        "level": os.environ["LOG_LEVEL"],
        "extra": os.environ.get("EXTRA"),
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env_function_name": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "amount": Decimal("12.5"),
    }

def fail(event, context):
    raise KeyError("buyer")

def slow(event, context):
    time.sleep(3)
    return "late"

def unserialisable(event, context):
    return {"when": object()}
"""

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  LogLevel: {Type: String, Default: INFO}
Globals:
  Function:
    Runtime: python3.12
    CodeUri: src/
    MemorySize: 512
    Timeout: 5
    Environment:
      Variables:
        QUEUE_URL: !Ref Inbox
        LOG_LEVEL: !Ref LogLevel
Resources:
  Inbox:
    Type: AWS::SQS::Queue
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties: {Handler: fake_handlers.echo}
  FailingFunction:
    Type: AWS::Serverless::Function
    Properties: {Handler: fake_handlers.fail}
  SlowFunction:
    Type: AWS::Serverless::Function
    Properties: {Handler: fake_handlers.slow, Timeout: 1}
  OddFunction:
    Type: AWS::Serverless::Function
    Properties: {Handler: fake_handlers.unserialisable}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway template and handler module, importable from tmp_path."""
    (tmp_path / "fake_handlers.py").write_text(HANDLERS)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.fixture
def local(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalStack]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-central-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield LocalStack.deploy(project / "template.yaml")


def dozor(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(DOZOR), *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=180, check=False
    )


# --- in-process --------------------------------------------------------------------------------


def test_the_handler_sees_its_lambda_environment_and_context(local: LocalStack) -> None:
    spec = local.function("EchoFunction")

    invocation = invoke_handler(local, "EchoFunction", {"order_id": "o-1"})

    assert invocation.ok, invocation.error
    result: dict[str, Any] = invocation.result
    assert result["event"] == {"order_id": "o-1"}
    assert result["queue"] == local.queue_url("Inbox")
    assert result["function_name"] == result["env_function_name"] == spec.name
    assert result["arn"] == spec.arn
    assert result["memory"] == "512"  # a string, as in the real runtime
    assert 0 < result["remaining_ms"] <= 5000
    assert result["request_id"] == invocation.request_id
    assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ  # the environment is restored


def test_a_raising_handler_is_reported_in_lambdas_error_shape(local: LocalStack) -> None:
    invocation = invoke_handler(local, "FailingFunction", {})

    assert not invocation.ok
    assert invocation.error is not None
    assert (invocation.error["errorType"], invocation.error["errorMessage"]) == ("KeyError", "'buyer'")
    assert "fake_handlers.py" in invocation.error["stackTrace"][-1]
    assert not any("dozor_local" in frame for frame in invocation.error["stackTrace"])


def test_a_handler_past_its_timeout_is_cut_off(local: LocalStack) -> None:
    invocation = invoke_handler(local, "SlowFunction", {}, enforce_timeout=True)

    assert invocation.error is not None
    assert invocation.error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in invocation.error["errorMessage"]


def test_a_result_that_is_not_json_is_a_marshal_error(local: LocalStack) -> None:
    invocation = invoke_handler(local, "OddFunction", {})

    assert invocation.error is not None
    assert invocation.error["errorType"] == "Runtime.MarshalError"


# --- the command -------------------------------------------------------------------------------


def test_invoke_prints_only_the_response_on_stdout(project: Path, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"order_id": "o-2"}))
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps({"Parameters": {"LOG_LEVEL": "DEBUG"}, "EchoFunction": {"EXTRA": "yes"}}))

    result = dozor(
        "invoke", "EchoFunction", "--event", str(event), "--env-vars", str(env_vars),
        "--template", str(project / "template.yaml"), pythonpath=project,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert (response["event"], response["level"], response["extra"], response["amount"]) == (
        {"order_id": "o-2"},
        "DEBUG",
        "yes",
        12.5,
    )
    assert response["queue"].startswith("https://sqs.eu-central-1.amazonaws.com/")
    assert "a log line on stdout" in result.stderr
    assert "REPORT RequestId:" in result.stderr


def test_invoke_exits_1_with_the_error_document_when_the_handler_raises(project: Path) -> None:
    result = dozor(
        "invoke", "FailingFunction", "--template", str(project / "template.yaml"), pythonpath=project
    )

    assert result.returncode == 1
    assert json.loads(result.stdout)["errorType"] == "KeyError"


def test_invoke_exits_2_for_a_function_the_template_does_not_have(project: Path) -> None:
    result = dozor(
        "invoke", "NoSuchFunction", "--template", str(project / "template.yaml"), pythonpath=project
    )

    assert (result.returncode, result.stdout) == (2, "")
    assert "EchoFunction" in result.stderr


# --- the real handlers, on template.yaml and the sample events ---------------------------------

needs_model = pytest.mark.skipif(not PACKAGED_MODEL.exists(), reason="no packaged model (make train)")


@needs_model
def test_score_order_returns_a_decision() -> None:
    result = dozor("invoke", "ScoreOrderFunction", "--event", "events/api_score_order.json")

    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200, response
    decision = json.loads(response["body"])
    assert decision["order_id"] == "ord-20261125-7f3a91c2"
    assert decision["decision"] in {"APPROVE", "REVIEW", "DECLINE"}


@needs_model
def test_score_order_names_the_invalid_fields() -> None:
    result = dozor("invoke", "ScoreOrderFunction", "--event", "events/api_score_order_invalid.json")

    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] == 422, response
    assert "buyer.id" in response["body"]
    assert "amount" in response["body"]


@needs_model
def test_order_events_quarantines_the_malformed_record() -> None:
    records = json.loads((EVENTS / "sqs_order_events.json").read_text())["Records"]
    malformed = [r["messageId"] for r in records if not r["body"].rstrip().endswith("}")]

    result = dozor("invoke", "OrderEventsFunction", "--event", "events/sqs_order_events.json")

    # The malformed record is acknowledged: its masked copy went to the quarantine queue
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"batchItemFailures": []}
    assert len(malformed) == 1
    assert "record quarantined" in result.stderr

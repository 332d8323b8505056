"""The functions' tracer: X-Ray's SDK only when tracing is on, and then botocore alone patched.

Powertools loads the SDK even with tracing off, and patching every library the SDK supports
imports each one installed; both cost every cold start. A child interpreter imports the wiring
under each environment and reports what it loaded and what a traced handler returns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]

CHILD = """
import json, sys
from dozor.handlers.wiring import tracer

@tracer.capture_method
def inner(value):
    return value + 1

@tracer.capture_lambda_handler
def handler(event, context):
    return inner(event)

class Context:
    function_name, memory_limit_in_mb, invoked_function_arn, aws_request_id = "f", 128, "arn", "r"

answer = handler(41, Context()) if tracer.disabled else None
print(json.dumps({"answer": answer, "disabled": tracer.disabled,
                  "xray": sorted(m for m in sys.modules if m.startswith("aws_xray_sdk")),
                  "requests": "requests" in sys.modules}))
"""


def _child(env: dict[str, str]) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if k not in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED")}
    child = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        env=base | {"PYTHONPATH": str(ROOT / "functions"), "AWS_DEFAULT_REGION": "eu-west-1"} | env,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    "env",
    [{}, {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}],
    ids=["outside-lambda", "disabled-in-lambda"],
)
def test_with_tracing_off_the_sdk_is_not_loaded_and_handlers_still_run(env: dict[str, str]) -> None:
    loaded = _child(env)
    assert loaded["disabled"] is True
    assert loaded["answer"] == 42
    assert "aws_xray_sdk.core" not in loaded["xray"]


def test_with_tracing_on_only_botocore_is_patched() -> None:
    loaded = _child({"LAMBDA_TASK_ROOT": "/var/task", "AWS_REGION": "eu-west-1"})
    assert loaded["disabled"] is False
    xray = loaded["xray"]
    assert "aws_xray_sdk.core" in xray and "aws_xray_sdk.ext.botocore.patch" in xray
    assert not [m for m in xray if m.startswith(("aws_xray_sdk.ext.requests", "aws_xray_sdk.ext.httplib"))]
    assert loaded["requests"] is False

"""Function workers: each function in its own process, with its own environment, as Lambda runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dozor_local.stack import FunctionSpec
from dozor_local.workers import FunctionWorker

pytestmark = pytest.mark.e2e


def spec(logical_id: str, handler: str, timeout: int = 5) -> FunctionSpec:
    return FunctionSpec(
        logical_id=logical_id,
        name=f"dozor-local-{logical_id}",
        arn=f"arn:aws:lambda:eu-central-1:123456789012:function:dozor-local-{logical_id}",
        handler=handler,
        runtime="python3.12",
        architectures=("arm64",),
        timeout=timeout,
        memory=256,
        env={},
        events=(),
    )


@pytest.fixture
def workers() -> Iterator[list[FunctionWorker]]:
    started = [
        FunctionWorker(spec("HelloFunction", "tests.e2e.throwaway_handlers.whoami"), {"GREETING": "privet"}),
        FunctionWorker(spec("NiHaoFunction", "tests.e2e.throwaway_handlers.whoami"), {"GREETING": "ni hao"}),
        FunctionWorker(spec("MisbehavingFunction", "tests.e2e.throwaway_handlers.misbehave", timeout=1), {}),
    ]
    for worker in started:
        worker.start()
    for worker in started:
        worker.wait_ready()
    yield started
    for worker in started:
        worker.stop()


def test_each_function_sees_its_own_environment(workers: list[FunctionWorker]) -> None:
    hello, ni_hao, _ = workers
    first = hello.invoke({"n": 1})
    assert first.result == {"greeting": "privet", "function": "dozor-local-HelloFunction", "event": {"n": 1}}
    assert first.init_duration_ms > 0  # the first invocation reports the cold start
    assert ni_hao.invoke({}).result["greeting"] == "ni hao"
    assert hello.invoke({}).result["greeting"] == "privet"
    assert hello.invoke({}).init_duration_ms == 0


def test_errors_marshalling_and_timeouts_as_lambda_reports_them(workers: list[FunctionWorker]) -> None:
    worker = workers[2]
    pid = worker.invoke({}).result["pid"]
    raised = worker.invoke({"raise": True})
    assert raised.error is not None
    assert (raised.error["errorType"], raised.error["errorMessage"]) == ("LookupError", "no such parcel")
    unmarshallable = worker.invoke({"unmarshallable": True})
    assert unmarshallable.error is not None and unmarshallable.error["errorType"] == "Runtime.MarshalError"
    assert worker.invoke({}).result["pid"] == pid  # still the same warm container
    timed_out = worker.invoke({"sleep": 5})
    assert timed_out.error is not None and timed_out.error["errorType"] == "Sandbox.Timedout"
    fresh = worker.invoke({})
    assert fresh.ok and fresh.result["pid"] != pid  # a timed-out sandbox is replaced
    assert fresh.init_duration_ms > 0


def test_an_unhandled_exception_reaches_the_function_log(tmp_path: Path) -> None:
    log = tmp_path / "function.log"
    worker = FunctionWorker(spec("LoggingFunction", "tests.e2e.throwaway_handlers.misbehave"), {}, log)
    worker.start()
    try:
        worker.wait_ready()
        assert worker.invoke({"raise": True}).error is not None
    finally:
        worker.stop()
    lines = [line for line in log.read_text().splitlines() if line.startswith("[ERROR]")]
    assert len(lines) == 1
    error = json.loads(lines[0].removeprefix("[ERROR] "))
    assert (error["errorType"], error["errorMessage"]) == ("LookupError", "no such parcel")
    assert any("misbehave" in frame for frame in error["stackTrace"])

"""The ScoreOrder function's first request after a cold start, for `bench.cold_start`.

A cold container's first checkout pays what the import deferred: the settings read, the AWS
clients built, the hash key and the registry's pointers read, powertools' request validation
set up for the route, the contract models' first use. `cold_requests` starts the AWS emulator
(moto's server, its own process) with template.yaml deployed, and gives a function that runs one
fresh interpreter as Lambda runs a cold ScoreOrder container (Lambda's environment, tracing on)
through two checkout requests; it returns the main thread's CPU time of each, the second being a
warm request's. The emulator's own work is in its process, so it is not counted: what is
counted is the function's, the AWS calls' client side included.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from dozor_local.invoke import isolate_from_real_aws
from dozor_local.stack import DEFAULT_TEMPLATE, LocalStack

SAMPLE_EVENT = Path(DEFAULT_TEMPLATE).parent / "events" / "api_score_order.json"

CHILD = """
import json, sys, time
import dozor.handlers.fraud.score_order as function
from dozor.domain.fraud.model import FraudModel
FraudModel.load()

class Context:  # what powertools reads of the Lambda runtime's context
    function_name, function_version, memory_limit_in_mb = "ScoreOrderFunction", "$LATEST", 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:ScoreOrderFunction"
    aws_request_id = log_group_name = log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 10_000

seconds = []
for event in json.loads(sys.stdin.read()):
    started = time.thread_time()
    answer = function.lambda_handler(event, Context())
    seconds.append(time.thread_time() - started)
    assert answer["statusCode"] == 200, answer
print(json.dumps(seconds))
"""


def _events(run: int) -> list[dict[str, object]]:
    """Two checkout requests, distinct orders (a replay would be cheaper than a decision)."""
    sample = json.loads(SAMPLE_EVENT.read_text(encoding="utf-8"))
    events = []
    for n in range(2):
        order = json.loads(sample["body"])
        order["order_id"] = f"bench-cold-{os.getpid()}-{run}-{n}"
        events.append(sample | {"body": json.dumps(order)})
    return events


@contextmanager
def cold_requests(bytecode_env: dict[str, str]) -> Iterator[Callable[[], tuple[float, float]]]:
    """A function timing (first request, second request) of a fresh ScoreOrder container."""
    isolate_from_real_aws()
    emulator = subprocess.Popen(
        [sys.executable, "-m", "dozor_local.emulator", "127.0.0.1", "0"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        ready = emulator.stdout.readline().strip()
        if not ready.startswith("ready "):
            raise OSError("the AWS emulator did not start")
        stack = LocalStack.deploy(endpoint_url=ready.removeprefix("ready "))
        env = {**os.environ, **bytecode_env, **stack.env_for("ScoreOrderFunction")}  # the stack's region
        for local_only in ("AWS_SAM_LOCAL", "POWERTOOLS_TRACE_DISABLED"):  # as on Lambda: traced
            env.pop(local_only, None)
        runs = itertools.count()

        def measure() -> tuple[float, float]:
            events = json.dumps(_events(next(runs)))
            done = subprocess.run(
                [sys.executable, "-c", CHILD],
                input=events,
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            first, second = json.loads(done.stdout.strip().splitlines()[-1])
            return float(first), float(second)

        yield measure
    finally:
        if emulator.stdin:
            emulator.stdin.close()  # the emulator exits when its stdin closes
        emulator.wait(timeout=30)

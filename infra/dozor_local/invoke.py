"""`dozor invoke`: what `sam local invoke` does, without Docker and without AWS.

    dozor invoke ScoreOrderFunction --event events/api_score_order.json

Starts moto in-process (dummy credentials; AWS_DEFAULT_REGION or eu-central-1), deploys
template.yaml on it, gives the process the function's environment as Lambda would (the
template's variables resolved against the local resources, plus AWS_LAMBDA_FUNCTION_NAME,
AWS_REGION, ...), imports the handler by its dotted path and calls it with the event and a
LambdaContext like the Python runtime's. The handler's return value is printed as one line of
JSON on stdout; everything else (logs, metrics, the REPORT line) goes to stderr. Exit status 0
when the handler returned, 1 when it raised, timed out or returned something not JSON.

`invoke_handler` and `lambda_context` are the same machinery for tests.
"""

from __future__ import annotations

import argparse
import contextlib
import decimal
import functools
import importlib
import json
import os
import resource
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dozor_local.stack import FunctionSpec, LocalStack

DEFAULT_REGION = "eu-central-1"
_DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
}
# Anything that could point boto3 at a real account or a real endpoint.
_REAL_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


# --- the Lambda context ------------------------------------------------------------------------


@dataclass(frozen=True)
class CognitoIdentity:
    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None


@dataclass
class LambdaContext:
    """The context object of the Python Lambda runtime (awslambdaric), attribute for attribute.

    As in the real runtime, `memory_limit_in_mb` is the string from AWS_LAMBDA_FUNCTION_MEMORY_SIZE.
    """

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: str
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: int
    identity: CognitoIdentity = field(default_factory=CognitoIdentity)
    client_context: Any = None
    tenant_id: str | None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(self.deadline_ms - int(time.time() * 1000), 0)


def lambda_context(
    spec: FunctionSpec, env: Mapping[str, str], *, request_id: str | None = None
) -> LambdaContext:
    """A fresh context for one invocation of `spec`, its deadline `spec.timeout` seconds from now."""
    return LambdaContext(
        function_name=spec.name,
        function_version=env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        invoked_function_arn=spec.arn,
        memory_limit_in_mb=str(spec.memory),
        aws_request_id=request_id or str(uuid.uuid4()),
        log_group_name=env.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{spec.name}"),
        log_stream_name=env.get("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
        deadline_ms=int(time.time() * 1000) + spec.timeout * 1000,
    )


# --- invoking ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation: a result, or an error in Lambda's error shape."""

    request_id: str
    result: Any = None
    error: dict[str, Any] | None = None  # errorMessage, errorType, stackTrace
    duration_ms: float = 0.0
    init_duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def response(self) -> Any:
        """What Lambda returns to the caller: the result, or the error document."""
        return self.result if self.error is None else self.error


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore the previous ones."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_handler(dotted: str) -> Callable[[Any, Any], Any]:
    """Import `package.module.function` the way the runtime does for the Handler setting."""
    module_name, _, function_name = dotted.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {dotted!r} is not module.function")
    handler: Callable[[Any, Any], Any] = getattr(importlib.import_module(module_name), function_name)
    return handler


def invoke_handler(
    stack: LocalStack,
    logical_id: str,
    event: Any,
    *,
    env_overrides: Mapping[str, str] | None = None,
    enforce_timeout: bool = False,
) -> Invocation:
    """Call the function's handler in this process, inside its Lambda environment.

    The environment is restored afterwards; the handler's module stays imported (a warm container).
    With `enforce_timeout`, an invocation running past the function's Timeout is reported as
    Lambda reports it (the handler's thread is abandoned).
    """
    spec = stack.function(logical_id)
    env = {**stack.env_for(logical_id), **(env_overrides or {})}
    request_id = str(uuid.uuid4())
    with patched_environ(env):
        started = time.perf_counter()
        try:
            handler = load_handler(spec.handler)
        except Exception as error:
            return Invocation(
                request_id, error=_error_document(error, request_id, "Runtime.ImportModuleError")
            )
        init_ms = (time.perf_counter() - started) * 1000
        context = lambda_context(spec, env, request_id=request_id)
        started = time.perf_counter()
        outcome = _call(
            handler,
            event,
            context,
            timeout=spec.timeout if enforce_timeout else None,
            thread_name=f"lambda-{spec.name}",
        )
        duration_ms = (time.perf_counter() - started) * 1000
    return _invocation(request_id, spec, outcome, duration_ms=duration_ms, init_duration_ms=init_ms)


def _call(
    handler: Callable[[Any, Any], Any],
    event: Any,
    context: Any,
    *,
    timeout: float | None,
    thread_name: str,
) -> dict[str, Any] | None:
    """``{"result": ...}`` or ``{"error": exception}``; None if the handler ran past `timeout`.

    With a timeout the handler runs in a daemon thread, abandoned when the time is up.
    """
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["result"] = handler(event, context)
        except BaseException as error:
            outcome["error"] = error

    if timeout is None:
        call()
        return outcome
    worker = threading.Thread(target=call, name=thread_name, daemon=True)
    worker.start()
    worker.join(timeout)
    return None if worker.is_alive() else outcome


def _invocation(
    request_id: str,
    spec: FunctionSpec,
    outcome: dict[str, Any] | None,
    *,
    duration_ms: float,
    init_duration_ms: float,
) -> Invocation:
    """What Lambda reports for the outcome: a timeout, the handler's error, a marshal error or the result."""
    finished = functools.partial(
        Invocation, request_id, duration_ms=duration_ms, init_duration_ms=init_duration_ms
    )
    if outcome is None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        message = f"{now} {request_id} Task timed out after {spec.timeout:.2f} seconds"
        error_doc = {"errorMessage": message, "errorType": "Sandbox.Timedout", "requestId": request_id}
        return finished(error=error_doc)
    if "error" in outcome:
        return finished(error=_error_document(outcome["error"], request_id))
    result = outcome.get("result")
    try:
        to_json(result)
    except (TypeError, ValueError) as error:
        message = f"Unable to marshal response: {error}"
        marshal = {"errorMessage": message, "errorType": "Runtime.MarshalError"}
        return finished(error=marshal)
    return finished(result=result)


def _error_document(error: BaseException, request_id: str, error_type: str | None = None) -> dict[str, Any]:
    """An exception the way the Python runtime reports it."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename != __file__]
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "requestId": request_id,
        "stackTrace": [
            f'  File "{f.filename}", line {f.lineno}, in {f.name}\n    {f.line}\n' for f in frames
        ],
    }


def _json_default(value: Any) -> Any:
    # The runtime's serialiser accepts Decimal (what boto3's DynamoDB resource returns) and nothing else.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def to_json(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


# --- the command -------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    """`dozor invoke`'s arguments, on the parser the `dozor` CLI made for it."""
    parser.description = __doc__.split("\n\n")[1] if __doc__ else None
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "function", metavar="LogicalId", help="the function's logical id, e.g. ScoreOrderFunction"
    )
    parser.add_argument("-e", "--event", default=None, help="event JSON file ('-' for stdin; default {})")
    parser.add_argument(
        "-n",
        "--env-vars",
        type=Path,
        default=None,
        help='SAM\'s env-vars JSON: {"Parameters": {...all functions...}, "<LogicalId>": {...}}',
    )
    parser.add_argument(
        "-t", "--template", type=Path, default=None, help="default: template.yaml at the repo root"
    )
    parser.add_argument(
        "--parameter-overrides", nargs="*", default=[], metavar="Key=Value", help="template parameters"
    )
    parser.add_argument(
        "--no-timeout", action="store_true", help="let the handler run past the function's Timeout"
    )
    parser.set_defaults(run=run)


def _read_event(source: str | None) -> Any:
    if source is None:
        return {}
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return json.loads(text)


def _read_env_vars(path: Path | None, spec: FunctionSpec) -> dict[str, str]:
    """SAM's --env-vars file: global "Parameters" first, then the function's own block wins.

    Unlike `sam local invoke`, variables the template does not declare are set too (handy for
    MODEL_DIR and the like); each one is named on stderr.
    """
    if path is None:
        return {}
    document = json.loads(path.read_text(encoding="utf-8"))
    values: dict[str, Any] = {**document.get("Parameters", {}), **document.get(spec.name, {})}
    values.update(document.get(spec.logical_id, {}))
    for name in sorted(set(values) - set(spec.env)):
        print(f"env-vars: {name} is not declared in the template; setting it anyway", file=sys.stderr)
    return {name: value if isinstance(value, str) else json.dumps(value) for name, value in values.items()}


def isolate_from_real_aws(region: str | None = None) -> str:
    """Dummy credentials, a region, no profile or endpoint: nothing in this process can reach AWS."""
    for name in _REAL_AWS_VARIABLES:
        os.environ.pop(name, None)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_")]:
        os.environ.pop(name)
    os.environ.update(_DUMMY_CREDENTIALS)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    chosen = region or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    os.environ["AWS_DEFAULT_REGION"] = chosen
    return chosen


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[IO[str]]:
    """Send everything written to stdout (Python or C level) to stderr; yield the real stdout.

    Powertools' Logger and the EMF metrics write to stdout, as Lambda wants; `dozor invoke` keeps
    stdout for the response alone.
    """
    sys.stdout.flush()
    saved_fd = os.dup(1)
    real_stdout = os.fdopen(saved_fd, "w", encoding="utf-8", closefd=False)
    os.dup2(2, 1)
    saved_sys_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield real_stdout
    finally:
        sys.stdout.flush()
        sys.stdout = saved_sys_stdout
        os.dup2(saved_fd, 1)
        real_stdout.close()
        os.close(saved_fd)


def run(args: argparse.Namespace) -> int:
    isolate_from_real_aws()
    try:
        event = _read_event(args.event)
    except (OSError, ValueError) as error:
        print(f"dozor invoke: cannot read the event: {error}", file=sys.stderr)
        return 2
    parameters = dict(item.split("=", 1) for item in args.parameter_overrides)

    from moto import mock_aws  # noqa: PLC0415 - after the environment is isolated

    from dozor_local.stack import DEFAULT_TEMPLATE, LocalStack  # noqa: PLC0415

    with stdout_to_stderr() as response_stream, mock_aws():
        started = time.perf_counter()
        stack = LocalStack.deploy(args.template or DEFAULT_TEMPLATE, parameters=parameters)
        deploy_ms = (time.perf_counter() - started) * 1000
        if args.function not in stack.functions:
            known = sorted(stack.functions)
            print(f"dozor invoke: no function {args.function!r}; the template has {known}", file=sys.stderr)
            return 2
        spec = stack.function(args.function)
        overrides = _read_env_vars(args.env_vars, spec)
        print(f"local stack deployed in {deploy_ms:.0f} ms; invoking {spec.handler}", file=sys.stderr)
        invocation = invoke_handler(
            stack, args.function, event, env_overrides=overrides, enforce_timeout=not args.no_timeout
        )
        if invocation.error is not None:
            print(f"{invocation.error['errorType']}: {invocation.error['errorMessage']}", file=sys.stderr)
            print("".join(invocation.error.get("stackTrace", [])), end="", file=sys.stderr)
        _report(invocation, spec)
        response_stream.write(to_json(invocation.response()) + "\n")
        response_stream.flush()
    return 0 if invocation.ok else 1


def _report(invocation: Invocation, spec: FunctionSpec) -> None:
    """Lambda's REPORT line (max RSS of this whole process, so only an upper bound)."""
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"REPORT RequestId: {invocation.request_id}\tDuration: {invocation.duration_ms:.2f} ms\t"
        f"Billed Duration: {int(invocation.duration_ms) + 1} ms\tMemory Size: {spec.memory} MB\t"
        f"Max Memory Used: {max_rss_mb} MB\tInit Duration: {invocation.init_duration_ms:.2f} ms",
        file=sys.stderr,
    )

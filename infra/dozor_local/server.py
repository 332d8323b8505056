"""The whole of Dozor on one machine: moto's HTTP server, template.yaml on it, the functions behind a
local API gateway, SQS pollers and schedules. No Docker, no AWS account.

    with LocalServer(api_port=0, clock=SimClock(start)) as local:
        requests.post(local.api_url + "/v1/orders/score", json=order)
        local.send("OrderEventsQueue", order)          # boto3 on local.endpoint_url works too
        local.wait_idle()                              # every polled queue drained
        local.advance_clock(start + timedelta(hours=1))  # schedules fire on simulated time

Each function runs in its own worker process with the environment SAM would give it (the
template's variables resolved against the local resources, AWS_ENDPOINT_URL pointing at the
emulator and AWS_ENDPOINT_URL_DYNAMODB at its DynamoDB process): see `workers`. The functions
cannot tell they are local except through those settings.
`dozor local up` (`make serve`) is the long-running form.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from dozor_local import simtime
from dozor_local.auth import LOCAL_CREDENTIALS, Authorization
from dozor_local.emulator import PROFILE_ENV, REQUESTS_PATH
from dozor_local.gateway import ApiContext, ApiGateway, routes_from
from dozor_local.intrinsics import Resolver, UnresolvableError
from dozor_local.invoke import Invocation, isolate_from_real_aws
from dozor_local.pollers import Clock, Scheduler, SimClock, SqsPoller, WallClock, WallTicker
from dozor_local.sam import load_template
from dozor_local.stack import DEFAULT_TEMPLATE, LocalStack
from dozor_local.workers import FunctionPool

log = logging.getLogger(__name__)

OPS_ALERTS_QUEUE = "dozor-local-ops-alerts"
_SCHEDULE_TYPES = {"Schedule", "ScheduleV2"}


class LocalServer:
    """Emulator + deployed template + function workers + API gateway + pollers + schedules."""

    def __init__(
        self,
        template: str | Path = DEFAULT_TEMPLATE,
        *,
        host: str = "127.0.0.1",
        api_port: int = 3000,
        emulator_port: int = 0,
        clock: Clock | None = None,
        retry_after: int | None = None,
        parameters: Mapping[str, str] | None = None,
        env_overrides: Mapping[str, str] | None = None,
        concurrency: Mapping[str, int] | None = None,
        api_workers: int = 1,
        log_dir: Path | None = None,
        poll_wait_seconds: int = 1,
    ) -> None:
        self.template = Path(template)
        self.host = host
        self.api_port = api_port
        self.emulator_port = emulator_port
        self.clock: Clock = clock or WallClock()
        self.retry_after = retry_after
        self.parameters = dict(parameters or {})
        self.env_overrides = dict(env_overrides or {})
        self.concurrency = dict(concurrency or {})
        self.api_workers = api_workers  # containers of each function behind the HTTP API, unless named
        self.log_dir = log_dir
        self.poll_wait_seconds = poll_wait_seconds
        self.pools: dict[str, FunctionPool] = {}
        self.pollers: list[SqsPoller] = []
        self.schedulers: list[Scheduler] = []
        self.ops_queue_url = ""
        self._emulators: dict[str, subprocess.Popen[str]] = {}  # "dynamodb", then "main"
        self._endpoint_url = ""
        self._dynamodb_url = ""
        self._gateway: ApiGateway | None = None
        self._ticker: WallTicker | None = None
        self._stack: LocalStack | None = None
        self._sqs: Any = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> LocalServer:
        """Start everything; on any failure, stop what was started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        isolate_from_real_aws()
        # DynamoDB in a process of its own (see `dozor_local.emulator`); the main one forwards to it.
        self._dynamodb_url = self._emulator("dynamodb", 0)
        self._endpoint_url = self._emulator("main", self.emulator_port, self._dynamodb_url)
        stack = LocalStack.deploy(self.template, parameters=self.parameters, endpoint_url=self.endpoint_url)
        self._stack = stack
        self._sqs = stack.client("sqs")
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for logical_id, spec in stack.functions.items():
            env = {**stack.env_for(logical_id), "AWS_ENDPOINT_URL_DYNAMODB": self._dynamodb_url}
            env.update(self.env_overrides)
            if isinstance(self.clock, SimClock):  # the functions' "now" is the event's simulated time
                env[simtime.HANDLER_ENV] = spec.handler
            runs = dataclasses.replace(spec, handler=simtime.WRAPPER) if simtime.HANDLER_ENV in env else spec
            log_path = self.log_dir / f"{logical_id}.log" if self.log_dir else None
            serves_api = any(event.type == "HttpApi" for event in spec.events)
            containers = self.concurrency.get(logical_id, self.api_workers if serves_api else 1)
            pool = FunctionPool(runs, env, concurrency=containers, log_path=log_path)
            self.pools[logical_id] = pool
            pool.start()  # all spawn at once; imports run in parallel
        for pool in self.pools.values():
            pool.wait_ready()
        self._subscribe_ops_queue()
        start = self.clock.now()
        for logical_id, spec in stack.functions.items():
            for event in spec.events:
                if event.type == "SQS" and event.queue:
                    # As Lambda's event source mapping scales out: a poller per container, so
                    # that a function with two containers takes two batches at once.
                    for _ in self.pools[logical_id].workers:
                        self.pollers.append(self._poller(logical_id, event))
                elif event.type in _SCHEDULE_TYPES:
                    try:
                        scheduler = Scheduler(
                            function=logical_id,
                            event=event,
                            invoke=self._invoker(logical_id),
                            start=start,
                            region=stack.region,
                            account_id=stack.account_id,
                        )
                    except ValueError as error:  # a cron() schedule: the rest of the stack still runs
                        log.warning("%s.%s does not run locally: %s", logical_id, event.name, error)
                        print(
                            f"warning: {logical_id}.{event.name} does not run locally: {error}",
                            file=sys.stderr,
                        )
                        continue
                    self.schedulers.append(scheduler)
        api = ApiContext(account_id=stack.account_id, api_id=self._api_id(), region=stack.region)
        routes = routes_from(
            {logical_id: spec.events for logical_id, spec in stack.functions.items()},
            route_authorization(self.template, self.parameters),
        )
        self._gateway = ApiGateway(routes, self.invoke, api, host=self.host, port=self.api_port).start()
        for poller in self.pollers:
            poller.start()
        if self.schedulers and not isinstance(self.clock, SimClock):
            self._ticker = WallTicker(self.schedulers, self.clock).start()

    def stop(self) -> None:
        """Stop pollers and schedules, the gateway, the workers and the emulator; join every thread."""
        for poller in self.pollers:
            poller.stop()
        if self._ticker is not None:
            self._ticker.stop()
        for poller in self.pollers:
            poller.join(self.poll_wait_seconds + 15)
        if self._ticker is not None:
            self._ticker.join(5)
            self._ticker = None
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None
        for pool in self.pools.values():
            pool.stop()
        for emulator in reversed(list(self._emulators.values())):  # the main one first
            with contextlib.suppress(OSError):
                assert emulator.stdin is not None
                emulator.stdin.close()  # the emulator exits when its stdin closes
            try:
                emulator.wait(10)
            except subprocess.TimeoutExpired:
                emulator.kill()
                emulator.wait(10)
            if emulator.stdout is not None:
                emulator.stdout.close()
        self._emulators.clear()

    def _emulator(self, role: str, port: int, *args: str) -> str:
        """Start an emulator process; its URL once it is ready."""
        env = dict(os.environ)
        if role != "main" and PROFILE_ENV in env:
            env[PROFILE_ENV] += f".{role}"
        process = subprocess.Popen(
            [sys.executable, "-m", "dozor_local.emulator", self.host, str(port), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._emulators[role] = process
        assert process.stdout is not None
        ready = process.stdout.readline().strip()
        if not ready.startswith("ready "):
            raise OSError(f"the {role} emulator did not start on {self.host}:{port}")
        return ready.removeprefix("ready ")

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # --- what it offers ---------------------------------------------------------------------------

    @property
    def stack(self) -> LocalStack:
        assert self._stack is not None, "start() first"
        return self._stack

    @property
    def endpoint_url(self) -> str:
        """Where boto3 / the AWS CLI reach the emulator (every service, DynamoDB forwarded)."""
        return self._endpoint_url

    @property
    def dynamodb_endpoint_url(self) -> str:
        """The emulator process that serves DynamoDB, as the functions reach it."""
        return self._dynamodb_url

    @property
    def api_url(self) -> str:
        assert self._gateway is not None, "start() first"
        return self._gateway.url

    @property
    def gateway(self) -> ApiGateway:
        assert self._gateway is not None, "start() first"
        return self._gateway

    def client(self, service: str) -> Any:
        """A boto3 client on the emulator."""
        return self.stack.client(service)

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        """Invoke a function the way Lambda's Invoke API would (RequestResponse)."""
        return self.pools[logical_id].invoke(event)

    def send(self, queue: str, body: Any) -> str:
        """Put one message on a queue of the template (a dict is sent as JSON)."""
        text = body if isinstance(body, str) else json.dumps(body)
        message_id: str = self._sqs.send_message(QueueUrl=self.stack.queue_url(queue), MessageBody=text)[
            "MessageId"
        ]
        return message_id

    def send_batch(self, queue: str, bodies: list[Any]) -> None:
        """Put messages on a queue, ten per request."""
        url = self.stack.queue_url(queue)
        for start in range(0, len(bodies), 10):
            entries = [
                {"Id": str(n), "MessageBody": b if isinstance(b, str) else json.dumps(b)}
                for n, b in enumerate(bodies[start : start + 10])
            ]
            self._sqs.send_message_batch(QueueUrl=url, Entries=entries)

    def queue_depth(self, queue: str) -> int:
        """Messages on a queue of the template, visible and in flight."""
        return self._depth(self.stack.queue_url(queue))

    def dlq_depths(self) -> dict[str, int]:
        """Every queue that is some queue's dead-letter target, with its depth."""
        return {logical_id: self.queue_depth(logical_id) for logical_id in self.dead_letter_queues()}

    def dead_letter_queues(self) -> list[str]:
        targets = set()
        for resource in self.stack.resources.values():
            if resource.type != "AWS::SQS::Queue":
                continue
            policy = (
                self._sqs.get_queue_attributes(
                    QueueUrl=resource.attributes["QueueUrl"], AttributeNames=["RedrivePolicy"]
                )
                .get("Attributes", {})
                .get("RedrivePolicy")
            )
            if policy:
                target = json.loads(policy)["deadLetterTargetArn"]
                targets |= {
                    other_id
                    for other_id, other in self.stack.resources.items()
                    if other.attributes.get("Arn") == target
                }
        return sorted(targets)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until every polled queue is empty and no poller is mid-batch; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Ask the emulator only when no poller is mid-batch: every question costs it CPU
            # that the functions' own requests are waiting for.
            if not any(p.busy for p in self.pollers) and all(
                self._depth(url) == 0 for url in {p.queue_url: None for p in self.pollers}
            ):
                return True
            time.sleep(0.02)
        return False

    def advance_clock(self, moment: datetime, *, settle: bool = True) -> int:
        """Move the simulated clock to `moment`; run the schedules due by then (after the queues settle)."""
        if not isinstance(self.clock, SimClock):
            raise TypeError("advance_clock needs a SimClock")
        if settle:
            self.wait_idle()
        self.clock.advance_to(moment)
        return sum(s.run_due(self.clock.now()) for s in self.schedulers)

    def read_ops_alerts(self, max_messages: int = 10, wait_seconds: int = 0) -> list[dict[str, Any]]:
        """Take the notifications the ops alerts queue received from the template's topics."""
        received = self._sqs.receive_message(
            QueueUrl=self.ops_queue_url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        notifications = []
        for message in received:
            notifications.append(json.loads(message["Body"]))
            self._sqs.delete_message(QueueUrl=self.ops_queue_url, ReceiptHandle=message["ReceiptHandle"])
        return notifications

    def topics(self) -> dict[str, str]:
        return {i: r.ref for i, r in self.stack.resources.items() if r.type == "AWS::SNS::Topic"}

    def queues(self) -> dict[str, str]:
        return {
            i: r.attributes["QueueName"]
            for i, r in self.stack.resources.items()
            if r.type == "AWS::SQS::Queue"
        }

    def worker_pids(self) -> list[int]:
        """Every process the stack started: the emulators and the function workers."""
        emulators = [process.pid for process in self._emulators.values()]
        return emulators + [pid for pool in self.pools.values() for pid in pool.pids()]

    def aws_requests(self, by_caller: bool = False) -> Any:
        """What the emulator has served so far: {operation: [requests, CPU ms]}, or with
        `by_caller` {function logical id or "client": {operation: [requests, CPU ms]}}."""
        url = self.endpoint_url + REQUESTS_PATH + ("?by=caller" if by_caller else "")
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.load(answer)

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by the emulators ("emulator": the main one, "emulator_dynamodb")
        and each function's workers (Linux; {} elsewhere).

        The DynamoDB emulator works serially, so its CPU time is a floor under any run's wall time.
        """
        owners = {
            "emulator" if role == "main" else f"emulator_{role}": [process.pid]
            for role, process in self._emulators.items()
        }
        owners.update({logical_id: pool.pids() for logical_id, pool in self.pools.items()})
        used: dict[str, float] = {}
        for owner, pids in owners.items():
            total = 0.0
            for pid in pids:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    return {}
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            used[owner] = round(total, 1)
        return used

    # --- internals --------------------------------------------------------------------------------

    def _invoker(self, logical_id: str) -> Any:
        pool = self.pools[logical_id]
        return pool.invoke

    def _poller(self, logical_id: str, event: Any) -> SqsPoller:
        queue = event.queue
        return SqsPoller(
            self._sqs,
            function=logical_id,
            event=event,
            queue_url=self.stack.queue_url(queue),
            queue_arn=self.stack.queue_arn(queue),
            region=self.stack.region,
            invoke=self._invoker(logical_id),
            retry_after=self.retry_after,
            wait_seconds=self.poll_wait_seconds,
            clock=self.clock if isinstance(self.clock, SimClock) else None,
        )

    def _api_id(self) -> str:
        http_apis = [r for r in self.stack.resources.values() if r.type == "AWS::ApiGatewayV2::Api"]
        return http_apis[0].ref if http_apis else "local"

    def _depth(self, url: str) -> int:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def _subscribe_ops_queue(self) -> None:
        """An SQS queue subscribed to every topic of the template: what an ops team would be paged with."""
        self.ops_queue_url = self._sqs.create_queue(QueueName=OPS_ALERTS_QUEUE)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self.ops_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns = self.client("sns")
        for topic_arn in self.topics().values():
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)


def route_authorization(template: Path, parameters: Mapping[str, str]) -> dict[str, Authorization]:
    """{route key: AWS_IAM | JWT | NONE} as the HttpApi's definition body sets each route's security
    (its `Fn::If` on the template's conditions resolved with these parameters)."""
    sam = load_template(template)
    values = {
        name: str(parameters.get(name, spec.get("Default", "")))
        for name, spec in sam.get("Parameters", {}).items()
    }

    def unresolvable(*names: str) -> str:
        raise UnresolvableError(f"{names} is not known before the stack exists")

    resolver = Resolver(
        parameters=values, pseudo={}, ref=unresolvable, get_att=unresolvable, conditions=sam.get("Conditions")
    )
    found: dict[str, Authorization] = {}
    for resource in sam["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::HttpApi":
            continue
        body = resource.get("Properties", {}).get("DefinitionBody", {})
        for path, item in body.get("paths", {}).items():
            for method, operation in item.items():
                security = resolver.resolve(operation.get("security", []))
                schemes = {name for requirement in security for name in requirement}
                verb = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                key = "$default" if path == "$default" else f"{verb} {path}"
                found[key] = "AWS_IAM" if "AWS_IAM" in schemes else ("JWT" if schemes else "NONE")
    return found


@contextlib.contextmanager
def running(**options: Any) -> Iterator[LocalServer]:
    """`with running(api_port=0) as local:` — a started LocalServer, stopped on exit."""
    with LocalServer(**options) as local:
        yield local


def simulated(start: datetime | None = None) -> SimClock:
    """A simulated clock (by default at the current wall time, to the second)."""
    return SimClock(start or datetime.now(UTC).replace(microsecond=0))


# --- `dozor local up` ----------------------------------------------------------------------------


def configure(local: argparse.ArgumentParser) -> None:
    """`dozor local up`: the stack, long running, until Ctrl-C or SIGTERM."""
    actions = local.add_subparsers(dest="local_command", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start the local stack and keep it running (Ctrl-C stops it)")
    up.add_argument("--host", default="127.0.0.1", help="where the API and the emulator listen")
    up.add_argument("--port", type=int, default=3000, help="the API's port, as `sam local start-api`")
    up.add_argument("--emulator-port", type=int, default=5000, help="the AWS emulator's port (0: any free)")
    up.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    up.add_argument(
        "--log-dir", type=Path, default=Path(".dozor-local/logs"), help="one log file per function"
    )
    up.add_argument("--parameter-overrides", nargs="*", default=[], metavar="Key=Value")
    up.add_argument(
        "--api-workers",
        type=int,
        default=2,
        help="warm containers of each function behind the API, so that concurrent callers are not "
        "queued behind one another (Lambda scales them; default 2, one per core here)",
    )
    up.set_defaults(run=run_up)


def run_up(args: Any) -> int:
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    stopping = threading.Event()

    def on_signal(number: int, frame: Any) -> None:
        stopping.set()

    parameters = dict(item.split("=", 1) for item in args.parameter_overrides)
    local = LocalServer(
        args.template,
        host=args.host,
        api_port=args.port,
        emulator_port=args.emulator_port,
        parameters=parameters,
        api_workers=args.api_workers,
        log_dir=args.log_dir,
    )
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        started = time.perf_counter()
        try:
            local.start()
        except OSError as error:
            print(f"dozor local up: {error} (is another stack running? try --port / --emulator-port)")
            return 1
        print(describe(local, time.perf_counter() - started, args.log_dir), flush=True)
        while not stopping.wait(1.0):
            pass
        print("\nstopping...", flush=True)
    finally:
        local.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    print("stopped: emulator, gateway, pollers and function workers are gone.")
    return 0


def describe(local: LocalServer, seconds: float, log_dir: Path | None = None) -> str:
    """What `dozor local up` prints: where everything is and how to reach it."""
    stack = local.stack
    consumers = {
        event.queue: f"{logical_id} (batch {event.batch_size}, window {event.batching_window or 0} s)"
        for logical_id, spec in stack.functions.items()
        for event in spec.events
        if event.queue
    }
    dlqs = set(local.dead_letter_queues())
    routes = [f"{route.key:<40} {route.authorization}" for route in local.gateway.routes]
    key, secret = LOCAL_CREDENTIALS.access_key, LOCAL_CREDENTIALS.secret_key
    lines = [
        f"Dozor local stack up in {seconds:.1f} s ({stack.template_path.name}, stack {stack.stack_name})",
        "",
        f"  API        {local.api_url}",
        *(f"               {route}" for route in routes),
        f"  emulator   {local.endpoint_url}   (moto: DynamoDB, SQS, SNS, S3, Secrets Manager, ...)",
        f"  console    {local.api_url}/console/   (sign in with the local principal {key} / {secret})",
        "",
        "  for boto3 / the AWS CLI:",
        f"    export AWS_ENDPOINT_URL={local.endpoint_url} AWS_DEFAULT_REGION={stack.region} "
        f"AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={secret}",
        "",
        "  queues",
    ]
    for logical_id, name in sorted(local.queues().items()):
        role = (
            "DLQ"
            if logical_id in dlqs
            else ("-> " + consumers[logical_id] if logical_id in consumers else "")
        )
        lines.append(f"    {logical_id:<22} {name:<50} {role}")
    topics = local.topics()
    if topics:
        lines.append("  topics")
        lines += [f"    {logical_id:<22} {arn}" for logical_id, arn in sorted(topics.items())]
    lines.append(
        f"  ops alerts {OPS_ALERTS_QUEUE} (subscribed to every topic; read it with sqs receive-message)"
    )
    for scheduler in local.schedulers:
        lines.append(f"  schedule   {scheduler.function}: every {scheduler.period}")
    if log_dir is not None:
        lines.append(f"  logs       {log_dir}/<Function>.log")
    open_routes = [r.key for r in local.gateway.routes if r.authorization == "NONE"]
    modes = sorted({r.authorization for r in local.gateway.routes} - {"NONE"})
    sigv4 = f"--aws-sigv4 'aws:amz:{stack.region}:execute-api' --user {key}:{secret}"
    lines += [
        "",
        f"  API auth   {' / '.join(modes) or 'none'} on every route but {', '.join(open_routes) or '-'},",
        "             as deployed: requests are signed with SigV4 (service execute-api, region "
        f"{stack.region})",
        f"             by the local principal {key} / {secret}; unsigned or wrongly signed: 403",
        "",
        "  try:",
        f"    curl -s {sigv4} \\",
        f"         {local.api_url}/v1/orders/score -H 'content-type: application/json' -d @events/order.json",
        f"    curl -s {sigv4} {local.api_url}/v1/orders/<order_id>/decision",
        f"    curl -s {local.api_url}/v1/openapi.json          # the docs need no signature",
        f"    dozor call POST /v1/orders/score --data @events/order.json --url {local.api_url}",
        "",
        "  from Python (any SigV4 signer works: botocore's SigV4Auth, awscurl, requests-aws4auth):",
        "    import json, urllib.request",
        "    from dozor_local.auth import sign",
        f"    url, body = '{local.api_url}/v1/orders/score', open('events/order.json', 'rb').read()",
        "    headers = sign('POST', url, body, {'content-type': 'application/json'}, "
        f"region='{stack.region}')",
        "    print(json.load(urllib.request.urlopen(urllib.request.Request(url, body, headers))))",
        "",
        "Ctrl-C stops everything.",
    ]
    return "\n".join(lines)

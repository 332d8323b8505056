"""Lambda containers without Docker: one worker process per function, with that function's environment.

Why processes and not threads: a function's environment is process-global (os.environ), and the
handlers' modules keep per-container state in module globals: `wiring.dependencies()` is an
lru_cache built from the environment of its first caller, powertools' Logger/Metrics read their
settings at import, and `order_events.processor` (a BatchProcessor) is not safe to share between
concurrent invocations. Two functions in one process would share all of that. A process per
function is what Lambda gives (one container, one environment, one invocation at a time), costs one
import of the handler per function (≈ 1 s, in parallel) and a pipe round trip per invocation
(≈ 0.1 ms, measured by `python -m dozor_local.bench_gateway`).

The worker is a fresh interpreter (`python -m dozor_local.workers`, connecting back over a local
socket): the parent runs moto's server threads, forking a threaded process is unsafe, and
multiprocessing's spawn would re-import the parent's main script. It applies the function's
environment before importing anything of the handler, sends stdout (powertools' logs and EMF
metrics) to a log file or /dev/null, and then serves invocations from its connection. An
invocation running past the function's Timeout kills the worker (the next one starts cold), as
Lambda does with a timed-out sandbox.
"""

from __future__ import annotations

import contextlib
import cProfile
import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

from dozor_local.invoke import (
    Invocation,
    _error_document,
    isolate_from_real_aws,
    lambda_context,
    load_handler,
    to_json,
)
from dozor_local.stack import FunctionSpec

_READY_TIMEOUT_S = 60.0
# A directory: each worker profiles its invocations (cProfile) and writes <function>-<pid>.prof there at exit.
PROFILE_ENV = "DOZOR_WORKER_PROFILE"


def _worker_main(conn: Connection) -> None:
    """The worker process: environment first, then the handler, then one invocation per message."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    spec, env, log_path = conn.recv()
    isolate_from_real_aws(env.get("AWS_REGION"))
    os.environ.update(env)
    target = os.open(log_path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)
    started = time.perf_counter()
    try:
        handler = load_handler(spec.handler)
    except Exception as error:
        conn.send(("import-error", _error_document(error, "init", "Runtime.ImportModuleError")))
        return
    conn.send(("ready", (time.perf_counter() - started) * 1000))
    profile_dir = os.environ.get(PROFILE_ENV)
    profiler = cProfile.Profile() if profile_dir else None
    try:
        _serve_invocations(conn, spec, env, handler, profiler)
    finally:
        if profiler is not None and profile_dir:
            profiler.dump_stats(str(Path(profile_dir) / f"{spec.logical_id}-{os.getpid()}.prof"))


def _serve_invocations(
    conn: Connection, spec: FunctionSpec, env: Mapping[str, str], handler: Any, profiler: Any
) -> None:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        request_id, event = message
        context = lambda_context(spec, env, request_id=request_id)
        began = time.perf_counter()
        reply: tuple[str, Any]
        try:
            if profiler is not None:
                profiler.enable()
            try:
                result = handler(event, context)
            finally:
                if profiler is not None:
                    profiler.disable()
        except Exception as error:
            reply = ("error", _error_document(error, request_id))
            # As the Lambda Python runtime does: the unhandled error goes to the function's log.
            print(f"[ERROR] {json.dumps(reply[1])}", flush=True)
        else:
            try:  # what Lambda returns is the JSON of the result: send exactly that back
                reply = ("result", json.loads(to_json(result)))
            except (TypeError, ValueError) as error:
                message = f"Unable to marshal response: {error}"
                reply = ("error", {"errorMessage": message, "errorType": "Runtime.MarshalError"})
        sys.stdout.flush()
        conn.send((*reply, (time.perf_counter() - began) * 1000))


def _no_delay(connection: Connection) -> None:
    """Nagle off: an SQS batch event (> 16 KiB) goes out in two writes, and the peer's delayed ACK
    would hold the second back ~40 ms."""
    with socket.fromfd(connection.fileno(), socket.AF_INET, socket.SOCK_STREAM) as duplicate:
        duplicate.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class FunctionWorker:
    """One warm container of a function: a process, its pipe, one invocation at a time."""

    def __init__(self, spec: FunctionSpec, env: Mapping[str, str], log_path: Path | None = None) -> None:
        self.spec = spec
        # The function's name in its SDK user agent, so the emulator can meter requests by caller.
        self.env = {"AWS_SDK_UA_APP_ID": spec.logical_id, **env}
        self.log_path = log_path
        self.init_duration_ms = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._cold = True

    def start(self) -> None:
        """Start the process; `wait_ready` blocks until its handler is imported."""
        authkey = secrets.token_bytes(16)
        with Listener(("127.0.0.1", 0), authkey=authkey) as listener:
            host, port = listener.address
            self._process = subprocess.Popen(
                [sys.executable, "-m", "dozor_local.workers", f"{host}:{port}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            assert self._process.stdin is not None
            self._process.stdin.write(authkey.hex().encode() + b"\n")
            self._process.stdin.close()
            listener._listener._socket.settimeout(_READY_TIMEOUT_S)  # type: ignore[attr-defined]
            self._conn = listener.accept()
        _no_delay(self._conn)
        self._conn.send((self.spec, self.env, str(self.log_path) if self.log_path else None))
        self._cold = True

    def wait_ready(self, timeout: float = _READY_TIMEOUT_S) -> None:
        assert self._conn is not None, "start() first"
        if not self._conn.poll(timeout):
            self.stop()
            raise RuntimeError(f"{self.spec.logical_id}: the handler did not load within {timeout:.0f} s")
        kind, payload = self._conn.recv()
        if kind != "ready":
            self.stop()
            raise RuntimeError(f"{self.spec.logical_id}: {payload['errorType']}: {payload['errorMessage']}")
        self.init_duration_ms = float(payload)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def invoke(self, event: Any, *, request_id: str | None = None) -> Invocation:
        """Run the handler on `event` in the worker; a timeout or a crash replaces the worker."""
        if self._process is None or self._process.poll() is not None:
            self.start()
            self.wait_ready()
        assert self._conn is not None
        request_id = request_id or str(uuid.uuid4())
        init_ms = self.init_duration_ms if self._cold else 0.0
        self._cold = False
        started = time.perf_counter()
        try:
            self._conn.send((request_id, event))
            answered = self._conn.poll(self.spec.timeout)
            reply = self._conn.recv() if answered else None
        except (EOFError, OSError, BrokenPipeError):
            self.stop()
            error = {
                "errorMessage": "the runtime exited",
                "errorType": "Runtime.ExitError",
                "requestId": request_id,
            }
            return Invocation(request_id, error=error, duration_ms=(time.perf_counter() - started) * 1000)
        if reply is None:
            self.stop()  # a timed-out sandbox is discarded; the next invocation starts cold
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            message = f"{now} {request_id} Task timed out after {self.spec.timeout:.2f} seconds"
            error = {"errorMessage": message, "errorType": "Sandbox.Timedout", "requestId": request_id}
            return Invocation(request_id, error=error, duration_ms=self.spec.timeout * 1000.0)
        kind, payload, duration_ms = reply
        if kind == "result":
            return Invocation(request_id, result=payload, duration_ms=duration_ms, init_duration_ms=init_ms)
        return Invocation(request_id, error=payload, duration_ms=duration_ms, init_duration_ms=init_ms)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to exit; kill it if it does not."""
        if self._conn is not None:
            with contextlib.suppress(OSError, BrokenPipeError):
                self._conn.send(None)
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None


class FunctionPool:
    """A function's containers: up to `concurrency` invocations at once, each in its own worker."""

    def __init__(
        self,
        spec: FunctionSpec,
        env: Mapping[str, str],
        *,
        concurrency: int = 1,
        log_path: Path | None = None,
    ) -> None:
        self.spec = spec
        self.workers = [FunctionWorker(spec, env, log_path) for _ in range(concurrency)]
        self._idle: queue.Queue[FunctionWorker] = queue.Queue()
        self._lock = threading.Lock()
        self.invocations = 0
        self.errors = 0

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def wait_ready(self) -> None:
        for worker in self.workers:
            worker.wait_ready()
            self._idle.put(worker)

    @contextlib.contextmanager
    def _worker(self) -> Iterator[FunctionWorker]:
        worker = self._idle.get()
        try:
            yield worker
        finally:
            self._idle.put(worker)

    def invoke(self, event: Any) -> Invocation:
        """Invoke on the next idle worker (waiting for one if all are busy, as a concurrency limit does)."""
        with self._worker() as worker:
            invocation = worker.invoke(event)
        with self._lock:
            self.invocations += 1
            self.errors += 0 if invocation.ok else 1
        return invocation

    def pids(self) -> list[int]:
        return [pid for pid in (w.pid for w in self.workers) if pid is not None]

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


def _connect_and_serve(address: str) -> None:
    host, _, port = address.rpartition(":")
    authkey = bytes.fromhex(sys.stdin.readline().strip())
    connection = Client((host, int(port)), authkey=authkey)
    _no_delay(connection)
    _worker_main(connection)


if __name__ == "__main__":
    _connect_and_serve(sys.argv[1])

"""Checkout under DynamoDB faults: the scoring API's status and latency on the local stack.

    python -m dozor_local.bench_faults [--orders 40]      (make bench-faults)

Starts the local stack with ``AWS_ENDPOINT_URL_DYNAMODB`` pointing every function at a fault
proxy in front of the emulator (FACTS.md: botocore honours the per-service endpoint, the rest
stays on the emulator), then scores distinct orders over signed HTTP, one fault at a time:

- ``none``: the proxy passes everything through;
- ``refused``: nothing listens on the proxy's port (connection refused, as a killed emulator);
- ``hang``: the proxy accepts and never answers;
- ``reads throttled``: BatchGetItem / GetItem answer ProvisionedThroughputExceededException;
- ``everything throttled``: every DynamoDB call does;
- ``replay while reads throttled``: orders scored cleanly first, then sent again with reads throttled.

Prints a Markdown table (statuses, degraded share, p50 / p99 in ms) and the JSON behind it. Each
row has two latencies: what checkout sees over HTTP (gateway, worker pipe and function), and the
function's own time as its worker measures it (what the decision budget bounds). A p99 over the
budget in the first but not the second is the machine's load, not the code. A benchmark, not a
test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from dozor_local.bench_gateway import order
from dozor_local.server import LocalServer
from dozor_local.timeline import ApiClient, HttpCall

_QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
_THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "injected by dozor_local.bench_faults",
    }
).encode()
_READS = {"DynamoDB_20120810.BatchGetItem", "DynamoDB_20120810.GetItem"}


class FaultProxy:
    """An HTTP proxy in front of the emulator's DynamoDB that can refuse, hang or throttle."""

    def __init__(self) -> None:
        self.mode = "none"
        self.target = ""
        self._stop = threading.Event()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server: ThreadingHTTPServer | None = None
        self._open: set[socket.socket] = set()  # the connections its handlers are serving
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def listen(self) -> None:
        if self._server is not None:
            return
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # The headers and the body go out as two writes: without this, Nagle holds the
                # body until the client's delayed ACK of the headers, 40 ms on every call.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with proxy._lock:
                    proxy._open.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._open.discard(self.connection)
                super().finish()

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                target = self.headers.get("x-amz-target", "")
                mode = proxy.mode
                if mode == "hang":
                    proxy._stop.wait(30)
                    self.close_connection = True
                    return
                if mode == "everything throttled" or (mode == "reads throttled" and target in _READS):
                    self._answer(400, {"content-type": "application/x-amz-json-1.0"}, _THROTTLED)
                    return
                split = urlsplit(proxy.target)
                upstream = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=30)
                upstream.request("POST", self.path, body=body, headers=dict(self.headers))
                response = upstream.getresponse()
                payload = response.read()
                headers = {k: v for k, v in response.getheaders() if k.lower() not in {"transfer-encoding"}}
                upstream.close()
                self._answer(response.status, headers, payload)

            def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def close(self) -> None:
        """Stop listening: connections to the port are refused, and those kept open are cut
        (a client's pooled connection would otherwise go on being served, as if nothing failed)."""
        if self._server is not None:
            self._stop.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            with self._lock:
                for connection in self._open:
                    with contextlib.suppress(OSError):
                        connection.shutdown(socket.SHUT_RDWR)
                self._open.clear()
            self._stop.clear()

    def set(self, mode: str) -> None:
        self._stop.set()  # release any hanging handlers of the previous mode
        time.sleep(0.05)
        self._stop.clear()
        self.mode = mode
        if mode == "refused":
            self.close()
        else:
            self.listen()


class FunctionTimes:
    """The scoring function's own durations, as its worker reports each invocation."""

    def __init__(self, local: LocalServer, logical_id: str = "ScoreOrderFunction") -> None:
        self.durations: list[float] = []
        pool = local.pools[logical_id]
        invoke = pool.invoke

        def timed(event: dict[str, Any]) -> Any:
            invocation = invoke(event)
            self.durations.append(invocation.duration_ms)
            return invocation

        pool.invoke = timed  # type: ignore[method-assign]  # the gateway looks the pool's invoke up per call


def measure(client: ApiClient, bodies: list[dict[str, Any]], times: FunctionTimes) -> dict[str, Any]:
    latencies, statuses, degraded = [], Counter[int](), 0
    times.durations.clear()
    for body in bodies:
        result = client.call(HttpCall("POST", "/v1/orders/score", body))
        latencies.append(result.latency_ms)
        statuses[result.status] += 1
        answer = result.body if isinstance(result.body, dict) else {}
        degraded += bool(answer.get("degraded"))
    return {
        "statuses": dict(sorted(statuses.items())),
        "degraded": degraded,
        "p50_ms": round(float(np.percentile(latencies, 50)), 1),
        "p99_ms": round(float(np.percentile(latencies, 99)), 1),
        "function_p50_ms": round(float(np.percentile(times.durations, 50)), 1) if times.durations else None,
        "function_p99_ms": round(float(np.percentile(times.durations, 99)), 1) if times.durations else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=40, help="checkout calls per fault")
    args = parser.parse_args(argv)
    proxy = FaultProxy()
    proxy.listen()
    report: dict[str, Any] = {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}
    env = {**_QUIET, "AWS_ENDPOINT_URL_DYNAMODB": proxy.url}
    with LocalServer(api_port=0, env_overrides=env) as local:
        proxy.target = local.dynamodb_endpoint_url  # (the main endpoint would forward it there)
        client = ApiClient(local.api_url, region=local.stack.region)
        times = FunctionTimes(local)
        measure(client, [order(n, "warm") for n in range(20)], times)
        rows: dict[str, Any] = {}
        for mode in ("none", "refused", "hang", "reads throttled", "everything throttled"):
            proxy.set(mode)
            rows[mode] = measure(
                client, [order(n, mode.replace(" ", "-")) for n in range(args.orders)], times
            )
        proxy.set("none")
        replayed = [order(n, "replay") for n in range(args.orders)]
        measure(client, replayed, times)
        proxy.set("reads throttled")
        rows["replay while reads throttled"] = measure(client, replayed, times)
        proxy.set("none")
    proxy.close()
    report["faults"] = rows
    print("| fault | status | degraded | p50 ms | p99 ms | function p50 / p99 ms |")
    print("|---|---|---|---|---|---|")
    for mode, row in rows.items():
        statuses = ", ".join(f"{n}× {s}" for s, n in row["statuses"].items())
        own = f"{row['function_p50_ms']} / {row['function_p99_ms']}"
        seen = f"{row['p50_ms']} | {row['p99_ms']}"
        print(f"| {mode} | {statuses} | {row['degraded']}/{args.orders} | {seen} | {own} |")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The HTTP API's latency and throughput on loopback, through the whole local stack.

    python -m dozor_local.bench_gateway [--orders 300] [--clients 1 2 4]

Starts the local stack (emulator process, function workers, API gateway on a free port) and
measures, from an HTTP client on 127.0.0.1:
- the gateway alone: a route answered by an in-process echo function (HTTP + event building);
- the gateway and a function worker without AWS calls: GET /v1/openapi.json (the function builds
  the OpenAPI document on every call) and GET /console/favicon.svg (a packaged file: the hand-off);
- a real checkout: POST /v1/orders/score of distinct orders, SigV4-signed as in AWS (DynamoDB read
  + transaction on moto), sequentially and from several concurrent clients (ScoreOrderFunction
  with as many workers).
Prints one JSON document. A benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from dozor_local.gateway import ApiContext, ApiGateway, Route
from dozor_local.invoke import Invocation
from dozor_local.server import LocalServer
from dozor_local.timeline import ApiClient, HttpCall

_QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}


def order(n: int, run: str) -> dict[str, Any]:
    """A plausible checkout: a different buyer, card and device each time."""
    created = datetime(2026, 11, 20, 9, tzinfo=UTC) + timedelta(seconds=n)
    return {
        "order_id": f"bench-{run}-{n}",
        "created_at": created.isoformat(),
        "amount": 4990.0 + n % 100,
        "currency": "RUB",
        "buyer": {
            "id": f"b-{run}-{n}",
            "email": f"buyer{n}@mail.ru",
            "account_created_at": "2024-01-01T00:00:00Z",
        },
        "seller": {"id": f"s-{n % 50}"},
        "ip": f"95.165.{n % 250}.{n % 200}",
        "device_id": f"dev-{run}-{n}",
        "payment": {
            "method": "card",
            "card_fingerprint": f"fp-{run}-{n}",
            "card_bin": "427600",
            "card_country": "RU",
        },
        "shipping": {"country": "RU", "region": "RU-MOW", "city": "Moscow", "address": f"ul. Lenina {n}"},
        "items": [{"sku": "CASE-1", "category": "phones", "quantity": 1, "unit_price": 4990.0}],
    }


def measure(
    calls: list[HttpCall], client: ApiClient, clients: int, local: LocalServer | None = None
) -> dict[str, Any]:
    """p50 / p99 latency and requests per second for the calls, `clients` at a time; with the
    local stack, what each call cost the emulator and the functions (CPU) and its AWS requests."""
    before = (local.aws_requests(), local.cpu_seconds()) if local is not None else None
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(client.call, calls))
    wall = time.perf_counter() - started
    costs = _costs(local, before, len(calls)) if local is not None and before is not None else {}
    latencies = [r.latency_ms for r in results]
    statuses = sorted({r.status for r in results})
    return {
        "requests": len(results),
        "clients": clients,
        "statuses": statuses,
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "requests_per_second": round(len(results) / wall, 1),
        **costs,
    }


def _costs(
    local: LocalServer, before: tuple[dict[str, list[float]], dict[str, float]], calls: int
) -> dict[str, Any]:
    """Per call: emulator CPU (process, and in its request threads), function CPU, AWS requests."""
    served, cpu = local.aws_requests(), local.cpu_seconds()
    was_served, was_cpu = before
    delta = {
        name: (n - was_served.get(name, [0, 0.0])[0], ms - was_served.get(name, [0, 0.0])[1])
        for name, (n, ms) in served.items()
    }
    delta = {name: d for name, d in delta.items() if d[0] > 0}
    per_call = {
        name: {"requests": round(n / calls, 2), "cpu_ms": round(ms / max(n, 1), 2)}
        for name, (n, ms) in sorted(delta.items(), key=lambda kv: -kv[1][1])
    }
    spent = {owner: seconds - was_cpu.get(owner, 0.0) for owner, seconds in cpu.items()}
    functions = {
        owner: round(seconds * 1000 / calls, 1)
        for owner, seconds in spent.items()
        if not owner.startswith("emulator") and seconds > 0
    }
    return {
        "aws_requests_per_call": round(sum(n for n, _ in delta.values()) / calls, 2),
        "emulator_cpu_ms_per_call": round(
            sum(s for owner, s in spent.items() if owner.startswith("emulator")) * 1000 / calls, 1
        ),
        "emulator_request_cpu_ms_per_call": round(sum(ms for _, ms in delta.values()) / calls, 1),
        "function_cpu_ms_per_call": functions,
        "aws_requests": per_call,
    }


def bench_gateway_alone(requests: int) -> dict[str, Any]:
    def echo(function: str, event: dict[str, Any]) -> Invocation:
        return Invocation("bench", result={"statusCode": 200, "body": '{"ok": true}'})

    api = ApiGateway(
        [Route.of("POST", "/v1/orders/score", "Echo")],
        echo,
        ApiContext("123456789012", "bench", "eu-central-1"),
        port=0,
    ).start()
    try:
        client = ApiClient(api.url)
        calls = [HttpCall("POST", "/v1/orders/score", order(n, "echo")) for n in range(requests)]
        measure(calls[:50], client, 1)
        return measure(calls, client, 1)
    finally:
        api.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=300, help="checkout calls per measurement")
    parser.add_argument("--clients", type=int, nargs="*", default=[1, 2])
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}
    report["gateway_only_echo"] = bench_gateway_alone(args.orders)
    concurrency = {"ScoreOrderFunction": max(args.clients)}
    with LocalServer(api_port=0, env_overrides=_QUIET, concurrency=concurrency) as local:
        client = ApiClient(local.api_url, region=local.stack.region)
        openapi = [HttpCall("GET", "/v1/openapi.json") for _ in range(args.orders)]
        measure(openapi[:20], client, 1)
        report["gateway_and_worker_openapi"] = measure(openapi, client, 1, local)
        # The hand-off alone: a packaged file from ConsoleFunction (no AWS call, little work).
        static = [HttpCall("GET", "/console/favicon.svg") for _ in range(args.orders)]
        measure(static[:20], client, 1)
        report["gateway_and_worker_static_file"] = measure(static, client, 1, local)
        warmup: Callable[[int], HttpCall] = lambda n: HttpCall("POST", "/v1/orders/score", order(n, "warm"))  # noqa: E731
        measure([warmup(n) for n in range(30)], client, 1)
        for clients in args.clients:
            calls = [
                HttpCall("POST", "/v1/orders/score", order(n, f"c{clients}")) for n in range(args.orders)
            ]
            report[f"score_order_{clients}_clients"] = measure(calls, client, clients, local)
    report["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

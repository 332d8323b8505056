"""The whole local stack, once per test session: moto's HTTP server, template.yaml deployed on it,
the functions in their worker processes, the API gateway and the pollers on free ports."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from dozor_local.pollers import SimClock
from dozor_local.server import LocalServer

SIM_START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
_QUIET = {"POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
_OUR_THREADS = ("sqs-poller-", "api-gateway", "scheduler", "checkout")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes; it has no /proc/<pid>/status "State: Z" once reaped.
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            return "State:\tZ" not in status.read()
    except FileNotFoundError:
        return False


@pytest.fixture(scope="session")
def local() -> Iterator[LocalServer]:
    # Another session's stack may be up in this process (the browser tests' `local`, when a worker
    # runs both): its threads are its own, stopped at its own teardown.
    others = {t for t in threading.enumerate() if t.name.startswith(_OUR_THREADS)}
    # Two shipment containers, as Lambda scales a busy queue's function out: a poller each.
    shipments = {"ShipmentEventsFunction": 2}
    server = LocalServer(
        api_port=0, clock=SimClock(SIM_START), retry_after=0, env_overrides=_QUIET, concurrency=shipments
    )
    with server:
        pids = server.worker_pids()
        assert len(pids) == len(server.stack.functions) + 1 + 2  # one more container, two emulators
        polling = [p.function for p in server.pollers]
        assert polling.count("ShipmentEventsFunction") == 2 and polling.count("OrderEventsFunction") == 1
        yield server
    # Everything the stack started is gone: worker processes and our threads.
    assert not [pid for pid in pids if _alive(pid)]
    assert not [t.name for t in threading.enumerate() if t.name.startswith(_OUR_THREADS) and t not in others]

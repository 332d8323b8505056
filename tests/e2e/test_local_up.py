"""`dozor local up` as a user runs it: prints where things are, serves, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

DOZOR = Path(sys.executable).with_name("dozor")


def children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def test_local_up_serves_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            str(DOZOR),
            "local",
            "up",
            "--port",
            "0",
            "--emulator-port",
            "0",
            "--log-dir",
            str(tmp_path / "logs"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        printed = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            printed.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(printed)
        api = re.search(r"API\s+(http://127\.0\.0\.1:\d+)", text)
        assert api, text
        assert re.search(r"export AWS_ENDPOINT_URL=http://127\.0\.0\.1:\d+", text)
        # how to call the authorized API: the principal, a signed curl, a Python example
        assert "--aws-sigv4 'aws:amz:" in text and "--user testing:testing" in text
        assert "from dozor_local.auth import sign" in text and "dozor call POST /v1/orders/score" in text
        assert re.search(r"POST /v1/orders/score\s+AWS_IAM", text)
        assert "OrderEventsQueue" in text and "OrderEventsDLQ" in text and "dozor-local-ops-alerts" in text
        started = children(process.pid)
        assert len(started) >= 3  # the emulator and a worker per function
        with urllib.request.urlopen(api.group(1) + "/v1/openapi.json", timeout=30) as response:
            assert "/v1/orders/score" in json.loads(response.read())["paths"]
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    assert "stopped" in rest
    assert not [pid for pid in started if alive(pid)]

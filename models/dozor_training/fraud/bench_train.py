"""Training at scale: `dozor train` on a simulated history of ~1M orders (`make bench`).

Simulates the history into a JSON Lines file (its own process, so its memory is not counted),
then runs `dozor train` on it as a user would, sampling the memory of the whole process tree (the
trainer and its replay partition; proportional set size) every 0.2 s. Reports wall time split into read +
replay, fit, evaluation and report, the peak memory, and the replay cost per order against a
floor measured in the same run: reading and validating the same orders from the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from dozor_training.history import open_orders

DAYS = 100  # the orders a day are chosen so the history holds about --orders orders


def _tree_memory_bytes(root: int) -> int:
    """Memory of a process and all its descendants: the sum of their proportional set sizes.

    PSS splits pages shared between processes (the forked replay partition's copy-on-write pages,
    the memory-mapped orders file) among them, so the sum is what the tree really occupies; a sum
    of RSS would count those pages once per process.
    """
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        ppid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:"))
        children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += next(
            (int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:")), 0
        )
    return total


def _run_sampled(argv: list[str]) -> tuple[subprocess.CompletedProcess[str], float, int]:
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.2):
            peak = max(peak, _tree_memory_bytes(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    result = subprocess.CompletedProcess(argv, process.returncode, out, err)
    return result, time.perf_counter() - started, peak


def run(orders: int, workdir: Path) -> dict[str, Any]:
    dozor = str(Path(sys.executable).with_name("dozor"))
    per_day = max(1, round(orders / DAYS))
    history = workdir / "history"
    subprocess.run(
        [
            dozor,
            "simulate",
            "--days",
            str(DAYS),
            "--orders-per-day",
            str(per_day),
            "--seed",
            "1",
            "--out",
            str(history),
            "--without-shipments",
        ],
        check=True,
        capture_output=True,
    )
    orders_file, labels_file = history / "orders.jsonl", history / "labels.jsonl"

    # The floor: read and validate every order of the file, in time order, nothing else.
    started = time.process_time()
    count = sum(1 for _ in open_orders(orders_file).iter_orders())
    floor_us = (time.process_time() - started) / count * 1e6

    trained, wall, peak = _run_sampled(
        [
            dozor,
            "train",
            "--orders",
            str(orders_file),
            "--labels",
            str(labels_file),
            "--out",
            str(workdir / "model"),
        ]
    )
    if trained.returncode != 0:
        raise SystemExit(f"dozor train failed:\n{trained.stderr}")
    report = json.loads(trained.stdout)
    replay_us = report["replay_us_per_order"]
    return {
        "orders": report["orders"],
        "file_mb": round(orders_file.stat().st_size / 2**20, 1),
        "train_wall_seconds": round(wall, 1),
        "seconds": report["seconds"],
        "peak_memory_mb_process_tree_pss": round(peak / 2**20, 1),
        "read_and_replay_us_per_order_wall": replay_us,
        "read_and_validate_us_per_order_cpu": round(floor_us, 1),
        "ratio_replay_to_read": round(replay_us / floor_us, 2),
        "test": {k: report["test"][k] for k in ("rows", "positive_rate")}
        | {name: report["test"][name]["average_precision"] for name in ("model", "rules_only", "logistic")},
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="keep the history and model here")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        print(json.dumps(run(args.orders, args.keep), indent=2))
        return
    with tempfile.TemporaryDirectory(prefix="dozor-bench-") as tmp:
        print(json.dumps(run(args.orders, Path(tmp)), indent=2))


if __name__ == "__main__":
    main()

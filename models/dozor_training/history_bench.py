"""How fast history files are written and read, and what iterating a big one costs in memory.

    python -m dozor_training.history_bench throughput [--orders 100000]
    python -m dozor_training.history_bench rss FILE      # run alone: peak RSS is per process

Throughput writes a simulated history in each format, then opens it (the created_at pre-pass) and
validates every row into an `Order`. `rss` opens one file, iterates every order without keeping
any, and reports the process's peak resident set size (`ru_maxrss`).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from dozor_training.fraud.simulator import SimulationConfig, simulate
from dozor_training.history import open_orders
from dozor_training.history_writer import write_orders

FORMATS = ("jsonl", "csv", "parquet", "jsonl.gz", "csv.gz")


def throughput(n_orders: int) -> dict[str, dict[str, float]]:
    """Seconds to write, open and validate `n_orders` simulated orders per format, and orders/s read."""
    per_day = 3000  # an ordinary day; weekends and 11.11 move the total a few percent
    history = simulate(SimulationConfig(days=max(1, n_orders // per_day), orders_per_day=per_day))
    payloads = [o.order for o in history]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for fmt in FORMATS:
            path = Path(scratch) / f"orders.{fmt}"
            t0 = time.perf_counter()
            write_orders(payloads, path)
            t1 = time.perf_counter()
            orders = open_orders(path)
            t2 = time.perf_counter()
            orders.validate()
            t3 = time.perf_counter()
            results[fmt] = {
                "orders": len(orders),
                "megabytes": round(path.stat().st_size / 1e6, 1),
                "write_s": round(t1 - t0, 2),
                "open_s": round(t2 - t1, 2),
                "validate_s": round(t3 - t2, 2),
                "read_orders_per_s": round(len(orders) / (t3 - t1)),
            }
    return results


def peak_rss(path: Path) -> dict[str, float]:
    """Iterate every order of `path` (keeping none) and report time and peak RSS."""
    t0 = time.perf_counter()
    orders = open_orders(path)
    t1 = time.perf_counter()
    count = sum(1 for _ in orders.iter_orders())
    t2 = time.perf_counter()
    return {
        "orders": count,
        "open_s": round(t1 - t0, 1),
        "iterate_s": round(t2 - t1, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **_resident_now(),
    }


def _resident_now() -> dict[str, float]:
    """Private (anonymous) and file-backed resident memory now, from /proc (Linux only).

    A memory-mapped JSON Lines file counts in RSS as file pages, which the kernel can drop.
    """
    status = Path("/proc/self/status")
    if not status.exists():
        return {}
    fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
    return {
        f"{name.lower()}_mb_at_end": round(int(fields[name].split()[0]) / 1024, 1)
        for name in ("RssAnon", "RssFile")
        if name in fields
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dozor_training.history_bench")
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("throughput").add_argument("--orders", type=int, default=100_000)
    sub.add_parser("rss").add_argument("file", type=Path)
    args = parser.parse_args()
    result = throughput(args.orders) if args.what == "throughput" else peak_rss(args.file)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

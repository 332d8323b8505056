"""`make demo`: a simulated marketplace stream through the real handlers on the AWS emulator.

The stack comes from template.yaml on moto; a quarter of the orders arrive as checkout calls
(API Gateway HTTP API events to ScoreOrderFunction), the rest as order events on the SQS queue,
delivered to OrderEventsFunction the way Lambda's poller does (batches, partial failures, DLQ).
A few malformed events are mixed in. At the end it prints what was decided and how that compares
with the simulator's ground truth, and writes ``summary.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time
import uuid
import warnings
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import numpy as np
from moto import mock_aws

from dozor.domain.contracts import RUB_PER_UNIT
from dozor_local.event_source import deliver_once
from dozor_local.invoke import lambda_context
from dozor_local.stack import LocalStack
from dozor_training.simulator import SimulationConfig, simulate

ROOT = Path(__file__).resolve().parents[2]


def _api_event(order: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / "api_score_order.json").read_text())
    event["body"] = json.dumps(order)
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


def _quiet_logs() -> None:
    # The demo prints a summary; the functions' structured logs would drown it (their metrics,
    # printed as EMF on stdout as in Lambda, go to /dev/null: see `run`).
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "dozor")
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"


def run(days: int, seed: int, out: Path, orders_per_day: int = 300) -> dict[str, Any]:
    _quiet_logs()
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        os.environ[name] = "testing"
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")
    os.environ.pop("AWS_ENDPOINT_URL", None)

    history = simulate(
        SimulationConfig(
            days=days, seed=seed, orders_per_day=orders_per_day, start=datetime(2026, 11, 1, tzinfo=UTC)
        )
    )
    truth = {s.order["order_id"]: s for s in history}
    started = time.perf_counter()
    with mock_aws():
        stack = LocalStack.deploy(ROOT / "template.yaml")
        os.environ.update(stack.env_for("OrderEventsFunction"))
        # Imported here, after the environment is set: powertools reads it at import.
        from dozor.handlers import order_events, score_order  # noqa: PLC0415
        from dozor.handlers.wiring import dependencies  # noqa: PLC0415

        dependencies.cache_clear()
        sqs = boto3.client("sqs")
        queue = stack.queue_url("OrderEventsQueue")
        rng = np.random.default_rng(seed)
        sink = io.StringIO()

        def context(logical_id: str) -> Any:
            return lambda_context(stack.function(logical_id), stack.env_for(logical_id))

        def deliver_quietly(*args: Any, **kwargs: Any) -> Any:
            with contextlib.redirect_stdout(sink):
                return deliver_once(*args, **kwargs)

        decisions: dict[str, dict[str, Any]] = {}
        api_latency_ms: list[float] = []
        poison = 0
        pending = 0
        for n, sim in enumerate(history):
            if rng.random() < 0.25:
                t0 = time.perf_counter()
                with contextlib.redirect_stdout(sink):
                    response = score_order.lambda_handler(
                        _api_event(sim.order), context("ScoreOrderFunction")
                    )
                api_latency_ms.append((time.perf_counter() - t0) * 1000)
                decisions[sim.order["order_id"]] = json.loads(response["body"])
            else:
                sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(sim.order))
                pending += 1
            if n % 500 == 250:  # now and then a producer bug puts garbage on the queue
                sqs.send_message(QueueUrl=queue, MessageBody='{"order_id": "broken", "amount": -1}')
                poison += 1
                pending += 1
            if pending >= 10 or n == len(history) - 1:
                # Keep the queue drained as Lambda would (moto slows down with queue depth).
                while deliver_quietly(
                    sqs,
                    queue,
                    order_events.lambda_handler,
                    context("OrderEventsFunction"),
                    visibility_timeout=0,
                ).received:
                    pass
                pending = 0
            sink.seek(0)
            sink.truncate()
            if n % 200 == 0:
                print(f"\r  scored {n:,}/{len(history):,} orders", end="", flush=True)
        print(f"\r  scored {len(history):,}/{len(history):,} orders")
        store = dependencies().store
        for oid in truth:
            if oid not in decisions:
                stored = store.get_decision(oid)
                if stored is not None:
                    decisions[oid] = stored.model_dump(mode="json")
        dlq = stack.queue_url("OrderEventsDLQ")
        dlq_depth = int(
            sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )
        review_depth = int(
            sqs.get_queue_attributes(
                QueueUrl=stack.queue_url("ReviewQueue"), AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
    elapsed = time.perf_counter() - started
    return _summarise(history, decisions, api_latency_ms, poison, dlq_depth, review_depth, elapsed, out)


def _amount_rub(sim: Any) -> float:
    return float(sim.order["amount"]) * RUB_PER_UNIT[sim.order["currency"]]


def _summarise(
    history: list[Any],
    decisions: dict[str, dict[str, Any]],
    api_latency_ms: list[float],
    poison: int,
    dlq_depth: int,
    review_depth: int,
    elapsed: float,
    out: Path,
) -> dict[str, Any]:
    kinds = Counter(d["decision"] for d in decisions.values())
    fraud = [s for s in history if s.is_fraud]
    flagged = {oid for oid, d in decisions.items() if d["decision"] != "APPROVE"}
    caught = [s for s in fraud if s.order["order_id"] in flagged]
    by_pattern = Counter(s.pattern for s in fraud)
    caught_by_pattern = Counter(s.pattern for s in caught)
    summary = {
        "orders": len(history),
        "decided": len(decisions),
        "decisions": dict(kinds),
        "fraud_orders": len(fraud),
        "fraud_caught": len(caught),
        "recall": round(len(caught) / len(fraud), 3) if fraud else None,
        "precision_of_flags": round(len(caught) / len(flagged), 3) if flagged else None,
        "fraud_value_rub": round(sum(_amount_rub(s) for s in fraud)),
        "fraud_value_stopped_rub": round(sum(_amount_rub(s) for s in caught)),
        "caught_by_pattern": {p: f"{caught_by_pattern[p]}/{n}" for p, n in sorted(by_pattern.items())},
        "api_latency_ms": {
            "p50": round(float(np.percentile(api_latency_ms, 50)), 2),
            "p99": round(float(np.percentile(api_latency_ms, 99)), 2),
        }
        if api_latency_ms
        else None,
        "poison_events_sent": poison,
        "dlq_depth": dlq_depth,
        "review_queue_depth": review_depth,
        "wall_seconds": round(elapsed, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    examples = sorted(
        (d for d in decisions.values() if d["decision"] != "APPROVE"), key=lambda d: -d["score"]
    )[:3]
    for d in examples:
        print(f"\n{d['order_id']}: {d['decision']} (score {d['score']:.3f}, rules {d['rules'] or '-'})")
        for reason in d["reasons"][:3]:
            print(f"  - {reason['text']}")
    print(f"\nsummary written to {out / 'summary.json'}")
    return summary


def main(args: argparse.Namespace | None = None) -> int:
    if args is None:
        parser = argparse.ArgumentParser(description=__doc__)
        parser.add_argument("--days", type=int, default=5)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--out", type=Path, default=Path("demo-output"))
        args = parser.parse_args()
    run(args.days, args.seed, Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

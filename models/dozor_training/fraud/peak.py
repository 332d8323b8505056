"""The 11.11 peak through the serving code: a top seller's 2,000 orders a second on moto.

The day: an ordinary marketplace day of ``base_orders_per_day`` orders (a diurnal curve in
Moscow time) at 30x on 11.11, the sale opening at midnight, its busiest second reaching
``peak_per_second`` orders, one seller taking 10 % of all of them. The simulation replays the
busiest ``window`` seconds of that day: every order of the top seller at its full rate, and a
``sample`` of everyone else's, each one POSTed to the ScoreOrder handler (the real handler,
budget, commit path, pending-commits hand-off) on moto, with `peak_conflicts.ConflictModel`
refusing what DynamoDB would refuse to concurrent writers. Chargebacks against the top seller's
earlier orders run through the Feedback handler meanwhile: their transactions hold the seller's
items, which is where real contention comes from in this layout.

Reported: orders, conflicts and throttles by kind, retries (in the adapter, the service and the
pending-commits queue), the modelled latency per order (p50 / p99 / max: DynamoDB calls at a
lognormal ~4 ms each, plus backoff), the hottest item's write units per second against the
1,000 an item takes, failures (must be none: every order decided, stored and counted once), and
for comparison how many of the top seller's orders would have overlapped another one's
transaction on the seller's items in the old layout (one transaction per order).

`make bench-peak` (``dozor bench-peak``) prints the figures as JSON; a small seeded run is in the
test suite.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dozor_training.fraud.peak_conflicts import ConflictModel, VirtualClock

ROOT = Path(__file__).resolve().parents[3]
MOSCOW = timedelta(hours=3)
SALE_OPENS = datetime(2026, 11, 10, 21, 0, tzinfo=UTC)  # 11.11 00:00 in Moscow
TRAFFIC_MULTIPLE = 30
TOP_SELLER_SHARE = 0.10
TOP_SELLER = "slr_top_1111"


@dataclass(frozen=True)
class PeakConfig:
    seed: int = 1111
    base_orders_per_day: int = 5_000_000
    peak_per_second: int = 20_000
    window: float = 1.0  # virtual seconds of the busiest part simulated
    sample: float = 0.05  # share of the other sellers' orders simulated
    chargebacks_per_second: float = 20.0  # against the top seller's orders, during the window
    # 0 = the system as deployed (`aggregates.SHARDS`); 1 = the seller unsharded, for comparison
    seller_shards: int = 0
    invocation_seconds: float = 0.06  # Lambda concurrency = rate x duration: the containers writing


def day_profile(config: PeakConfig) -> dict[str, float]:
    """The 11.11 day's volume: orders, the average and the busiest second, the top seller's."""
    hours = [0.5 + 0.5 * math.sin((h - 9) / 24 * 2 * math.pi) for h in range(24)]  # Moscow day
    scale = config.base_orders_per_day * TRAFFIC_MULTIPLE / (sum(hours) * 3600)
    per_hour = [scale * 3600 * w for w in hours]
    return {
        "orders_per_day": round(sum(per_hour)),
        "average_per_second": round(sum(per_hour) / 86400, 1),
        "peak_per_second": config.peak_per_second,
        "top_seller_peak_per_second": config.peak_per_second * TOP_SELLER_SHARE,
        "top_seller_orders_per_day": round(sum(per_hour) * TOP_SELLER_SHARE),
    }


def arrivals(config: PeakConfig, rng: random.Random) -> list[tuple[float, dict[str, Any]]]:
    """(virtual second, order) for the simulated window: Poisson arrivals at the peak rate."""
    top_rate = config.peak_per_second * TOP_SELLER_SHARE
    other_rate = config.peak_per_second * (1 - TOP_SELLER_SHARE) * config.sample
    orders: list[tuple[float, dict[str, Any]]] = []
    for rate, top in ((top_rate, True), (other_rate, False)):
        t = rng.expovariate(rate)
        while t < config.window:
            orders.append((t, _order(rng, t, top)))
            t += rng.expovariate(rate)
    return sorted(orders, key=lambda pair: pair[0])


def _order(rng: random.Random, t: float, top: bool) -> dict[str, Any]:
    buyer = f"u_{rng.randrange(3_000_000):07d}"
    price = round(rng.lognormvariate(7.6, 0.9), 2)
    # Pickup points and mobile carriers' shared addresses: a few entities see many buyers
    pvz = rng.random() < 0.6
    return {
        "order_id": f"ord_1111_{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}",
        "created_at": (SALE_OPENS + timedelta(seconds=t)).isoformat(),
        "amount": price,
        "currency": "RUB",
        "channel": rng.choice(["app", "app", "web"]),
        "buyer": {"id": buyer, "email": f"{buyer}@mail.ru", "account_created_at": "2024-05-01T10:00:00Z"},
        "seller": {"id": TOP_SELLER if top else f"slr_{rng.randrange(200_000):06d}"},
        "ip": f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(256)}",
        "ip_country": "RU",
        "device_id": f"dev-{buyer}",
        "payment": {"method": "card", "card_fingerprint": f"fp-{buyer}", "card_country": "RU"},
        "shipping": {
            "country": "RU",
            "region": "RU-MOW",
            "city": "Moscow",
            "postal_code": "125009",
            "address": f"PVZ {rng.randrange(300)}" if pvz else f"ul. Lenina {rng.randrange(90_000)}",
        },
        "items": [{"sku": "SKU-1", "category": "electronics", "quantity": 1, "unit_price": price}],
    }


@contextmanager
def deployed(config: PeakConfig) -> Iterator[Any]:
    """template.yaml on in-process moto, the fraud functions' environment set, the model on top."""
    import boto3  # noqa: PLC0415 - loaded only when the simulation runs
    from moto import mock_aws  # noqa: PLC0415

    from dozor.domain import aggregates as agg  # noqa: PLC0415
    from dozor.handlers.fraud.wiring import dependencies, feedback_recorder  # noqa: PLC0415
    from dozor.handlers.http_throttle import caller_limiter  # noqa: PLC0415
    from dozor.handlers.wiring import logger  # noqa: PLC0415
    from dozor_local.stack import LocalStack  # noqa: PLC0415

    saved_env, saved_shards, saved_level = dict(os.environ), dict(agg.SHARDS), logger.log_level
    os.environ.pop("AWS_ENDPOINT_URL", None)
    if config.seller_shards:
        agg.SHARDS["seller"] = config.seller_shards
    try:
        with mock_aws():
            local = LocalStack.deploy()
            for function in ("ScoreOrderFunction", "FeedbackFunction", "PendingCommitsFunction"):
                os.environ.update(local.env_for(function))
            # The budget is for Lambda on DynamoDB; moto on a shared machine is slower than that
            # and would hand orders to the pending queue for its own sake. Latency is modelled.
            os.environ["DECISION_BUDGET_MS"] = "10000"
            # Checkout is one caller sending the whole peak: its limit is raised for the day, as
            # ops would (CallerLimitOverrides); the limiter's own shared count still runs.
            os.environ["CALLER_RATE_LIMIT"] = str(config.peak_per_second * 2)
            os.environ["CALLER_BURST_LIMIT"] = str(config.peak_per_second * 2)
            logger.setLevel("ERROR")
            for cache in (dependencies, feedback_recorder, caller_limiter):
                cache.cache_clear()
            yield local
            for cache in (dependencies, feedback_recorder, caller_limiter):
                cache.cache_clear()
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        logger.setLevel(saved_level)  # the functions' logger is the process's: as it was found
        agg.SHARDS.clear()
        agg.SHARDS.update(saved_shards)
        boto3.DEFAULT_SESSION = None


def _api_event(order: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / "api_score_order.json").read_text())
    event.update(rawPath="/v1/orders/score", body=json.dumps(order), isBase64Encoded=False)
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


def _drain(local: Any, logical_id: str) -> list[dict[str, Any]]:
    """Messages waiting on a queue, as a Lambda SQS event's records (and removed from it)."""
    import boto3  # noqa: PLC0415

    from dozor_local.event_source import queue_arn, to_event  # noqa: PLC0415

    sqs, url = boto3.client("sqs"), local.queue_url(logical_id)
    got: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        got += batch
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return (
        to_event(got, queue_arn(sqs, url), os.environ.get("AWS_REGION", "eu-central-1"))["Records"]
        if got
        else []
    )


def simulate_peak(config: PeakConfig) -> dict[str, Any]:
    """Run the window through the handlers (see the module docstring); the figures."""
    # As template.yaml sets them for every function, before the handlers' modules read them
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Dozor")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "dozor")
    import boto3  # noqa: PLC0415

    from dozor.handlers.fraud import feedback, pending_commits, score_order  # noqa: PLC0415
    from dozor_local.invoke import lambda_context  # noqa: PLC0415

    rng = random.Random(config.seed)
    orders = arrivals(config, rng)
    clock = VirtualClock(random.Random(config.seed + 1))
    model = ConflictModel(clock)
    latencies: list[float] = []
    failures: list[str] = []
    top_decided: list[tuple[float, str]] = []
    with deployed(config) as local:
        model.install(boto3._get_default_session())  # before the functions build their clients
        context = lambda_context(local.function("ScoreOrderFunction"), local.env_for("ScoreOrderFunction"))
        containers = Containers(max(1, round(config.peak_per_second * config.invocation_seconds)), rng)
        next_chargeback = rng.expovariate(config.chargebacks_per_second)
        started = time.perf_counter()
        for at, order in orders:
            while next_chargeback < at and top_decided:
                _chargeback(local, feedback, clock, model.counts, next_chargeback, rng.choice(top_decided)[1])
                next_chargeback += rng.expovariate(config.chargebacks_per_second)
            clock.begin(at)
            with containers.one():
                response = score_order.lambda_handler(_api_event(order), context)
            latencies.append(clock.spent)
            if response["statusCode"] != 200:
                failures.append(f"{order['order_id']}: {response['statusCode']} {response['body'][:200]}")
            elif order["seller"]["id"] == TOP_SELLER:
                top_decided.append((at, order["order_id"]))
        wall = time.perf_counter() - started
        handed_off = _apply_pending(local, pending_commits, clock)
        failures += _audit(local, orders)
    return _figures(config, orders, latencies, failures, model, handed_off, wall)


class Containers:
    """The ScoreOrder containers a peak runs on: each a writer of its own (a name, a shard, what
    it has counted), taking turns in this one process."""

    def __init__(self, count: int, rng: random.Random) -> None:
        self._states: list[dict[str, Any] | None] = [None] * count
        self._rng = rng

    @contextmanager
    def one(self) -> Iterator[None]:
        from dozor.handlers.fraud.wiring import dependencies  # noqa: PLC0415

        store = dependencies().store
        k = self._rng.randrange(len(self._states))
        state = self._states[k]
        if state is None:
            store._rename()  # a new container: a writer never seen before
        else:
            store.writer, store.shard, store._counted = state["writer"], state["shard"], state["counted"]
        try:
            yield
        finally:
            self._states[k] = {"writer": store.writer, "shard": store.shard, "counted": store._counted}
            store._counted = type(store._counted)()


def _chargeback(
    local: Any, feedback: Any, clock: VirtualClock, counts: dict[str, int], at: float, order_id: str
) -> None:
    """A chargeback for an earlier top-seller order through the Feedback handler, redelivered
    (as SQS would) until it is recorded."""
    import boto3  # noqa: PLC0415
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError  # noqa: PLC0415

    from dozor_local.invoke import lambda_context  # noqa: PLC0415

    body = {
        "order_id": order_id,
        "kind": "chargeback",
        "reported_at": (SALE_OPENS + timedelta(seconds=at)).isoformat(),
    }
    boto3.client("sqs").send_message(QueueUrl=local.queue_url("FeedbackQueue"), MessageBody=json.dumps(body))
    context = lambda_context(local.function("FeedbackFunction"), local.env_for("FeedbackFunction"))
    for attempt in range(20):
        records = _drain(local, "FeedbackQueue")
        if not records:
            return
        clock.begin(at + attempt * 0.05)
        try:
            answer = feedback.lambda_handler({"Records": records}, context)
            failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        except BatchProcessingError:  # every record failed: the whole batch is redelivered
            failed = {r["messageId"] for r in records}
        counts["chargebacks redelivered"] += len(failed)
        for record in records:
            if record["messageId"] in failed:
                boto3.client("sqs").send_message(
                    QueueUrl=local.queue_url("FeedbackQueue"), MessageBody=record["body"]
                )


def _apply_pending(local: Any, pending_commits: Any, clock: VirtualClock) -> int:
    """Run the pending-commits function over what checkout handed off, until the queue is empty.

    SQS hands a message back after its visibility timeout (360 s), past the store's repair grace
    for a writer that may still be counting: the store's clock is moved on by that much here.
    """
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError  # noqa: PLC0415

    from dozor.adapters.dynamodb import decisions  # noqa: PLC0415
    from dozor_local.invoke import lambda_context  # noqa: PLC0415

    context = lambda_context(
        local.function("PendingCommitsFunction"), local.env_for("PendingCommitsFunction")
    )
    applied = 0
    real_time = decisions.time  # type: ignore[attr-defined]
    decisions.time = _Later(real_time, 360.0)  # type: ignore[attr-defined,assignment]
    try:
        while records := _drain(local, "PendingCommitsQueue"):
            clock.begin(clock.now + 1.0)
            try:
                failed = len(
                    pending_commits.lambda_handler({"Records": records}, context)["batchItemFailures"]
                )
            except BatchProcessingError:
                failed = len(records)
            applied += len(records) - failed
            if failed == len(records):
                break
    finally:
        decisions.time = real_time  # type: ignore[attr-defined]
    return applied


class _Later:
    """The ``time`` module, ``seconds`` on."""

    def __init__(self, real: Any, seconds: float) -> None:
        self._real, self._seconds = real, seconds

    def time(self) -> float:
        return float(self._real.time()) + self._seconds

    def sleep(self, seconds: float) -> None:
        self._real.sleep(seconds)


def _audit(local: Any, orders: list[tuple[float, dict[str, Any]]]) -> list[str]:
    """Every order stored once and counted once: decisions, no count left owed, seller totals."""
    import boto3  # noqa: PLC0415

    from dozor.domain import aggregates as agg  # noqa: PLC0415

    ddb = boto3.client("dynamodb")
    problems = []
    decisions: dict[str, dict[str, Any]] = {}
    for page in ddb.get_paginator("scan").paginate(TableName=local.physical_id("DecisionsTable")):
        decisions.update({item["order_id"]["S"]: item for item in page["Items"]})
    for _, order in orders:
        stored = decisions.get(order["order_id"])
        if stored is None:
            problems.append(f"{order['order_id']}: no decision stored")
        elif "count" in stored.get("outbox", {}).get("SS", []):
            problems.append(f"{order['order_id']}: its counting was left owed")
    counted = 0.0
    for pk in agg.shard_pks(f"seller#{TOP_SELLER}", "seller"):
        item = ddb.get_item(
            TableName=local.physical_id("FeaturesTable"), Key={"pk": {"S": pk}, "sk": {"S": "P"}}
        )
        counted += float(item.get("Item", {}).get("orders", {}).get("N", 0))
    expected = sum(1 for _, o in orders if o["seller"]["id"] == TOP_SELLER)
    if counted != expected:
        problems.append(f"the top seller counted {counted:.0f} orders of {expected}")
    return problems


def _old_layout_overlaps(orders: list[tuple[float, dict[str, Any]]], latencies: list[float]) -> float:
    """Share of the top seller's orders whose one transaction (decision + every container, on
    the seller's own items) would have overlapped another's: what TransactionConflict hits."""
    spans = sorted(
        (at, at + 2 * lat)
        for (at, o), lat in zip(orders, latencies, strict=True)
        if o["seller"]["id"] == TOP_SELLER
    )
    if len(spans) < 2:
        return 0.0
    overlapping = sum(
        1 for (s, _), (_, previous_end) in zip(spans[1:], spans, strict=False) if s < previous_end
    )
    return round(overlapping / (len(spans) - 1), 3)


def _figures(
    config: PeakConfig,
    orders: list[tuple[float, dict[str, Any]]],
    latencies: list[float],
    failures: list[str],
    model: ConflictModel,
    handed_off: int,
    wall: float,
) -> dict[str, Any]:
    ms = sorted(x * 1000 for x in latencies)
    hottest = max(model.hottest_units_per_second.items(), key=lambda kv: kv[1], default=("", 0))
    top = sum(1 for _, o in orders if o["seller"]["id"] == TOP_SELLER)
    return {
        "day": day_profile(config),
        "window_seconds": config.window,
        "orders_simulated": len(orders),
        "top_seller_orders": top,
        "top_seller_orders_per_second": round(top / config.window),
        "seller_shards": config.seller_shards or _deployed_shards(),
        "conflicts": dict(model.counts),
        "handed_to_pending_and_applied": handed_off,
        "latency_ms_p50": round(statistics.median(ms), 1) if ms else 0.0,
        "latency_ms_p99": round(ms[int(0.99 * (len(ms) - 1))], 1) if ms else 0.0,
        "latency_ms_max": round(ms[-1], 1) if ms else 0.0,
        "hottest_item": hottest[0],
        "hottest_item_write_units_per_second": hottest[1],
        "old_layout_top_seller_orders_overlapping": _old_layout_overlaps(orders, latencies),
        "failed_orders": len(failures),
        "failures": failures[:10],
        "wall_seconds": round(wall, 1),
    }


def _deployed_shards() -> int:
    from dozor.domain import aggregates as agg  # noqa: PLC0415

    return agg.SHARDS["seller"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0] if __doc__ else None
    parser.add_argument("--seed", type=int, default=PeakConfig.seed)
    parser.add_argument("--window", type=float, default=PeakConfig.window, help="virtual seconds simulated")
    parser.add_argument(
        "--sample", type=float, default=PeakConfig.sample, help="share of other sellers' orders"
    )
    parser.add_argument("--peak-per-second", type=int, default=PeakConfig.peak_per_second)
    parser.add_argument(
        "--compare-unsharded", action="store_true", help="run the window again with one seller item"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = PeakConfig(
        seed=args.seed, window=args.window, sample=args.sample, peak_per_second=args.peak_per_second
    )
    figures = simulate_peak(config)
    if args.compare_unsharded:
        unsharded = simulate_peak(PeakConfig(**{**config.__dict__, "seller_shards": 1}))
        figures["unsharded"] = {
            k: unsharded[k]
            for k in (
                "conflicts",
                "latency_ms_p50",
                "latency_ms_p99",
                "latency_ms_max",
                "hottest_item_write_units_per_second",
                "handed_to_pending_and_applied",
                "failed_orders",
                "failures",
            )
        }
    print(json.dumps(figures))
    return 1 if figures["failed_orders"] else 0


def main() -> None:  # pragma: no cover - `python -m dozor_training.fraud.peak`
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args()
    raise SystemExit(args.run(args))


if __name__ == "__main__":  # pragma: no cover
    main()

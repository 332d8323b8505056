"""Chaos: a stream of orders, carrier scans and feedback through the queue handlers on moto, with
every message delivered 1-3 times, shuffled within a window, 10 % of DynamoDB calls failing
(throttled, timed out before or after the write was applied, transaction conflicts) and an
occasional function timeout that kills an invocation halfway. The final tables, alerts, decision
events, review messages and counters must equal a clean run's: nothing lost, nothing counted twice.

The stream runs in phases (orders, then scans, then feedback: feedback about an order only counts
once the order is decided), each drained before the next, as queues in production are in steady
state. A failed record goes back to the end of its phase's queue, as SQS redelivers it.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import ReadTimeoutError
from moto import mock_aws

from dozor.handlers.fraud import feedback, order_events
from dozor.handlers.fraud.wiring import dependencies, feedback_recorder
from dozor.handlers.parcels import shipment_events
from dozor.handlers.parcels.wiring import parcel_loss_model, shipment_dependencies
from dozor.handlers.quarantine import _queue
from dozor_local.invoke import lambda_context
from dozor_local.stack import LocalStack
from tests.helpers.aws_stack import BASE_TIME, TEMPLATE, make_order, sqs_event
from tests.helpers.shipments import build_parcel_model

FAULT_RATE = 0.10
TIMEOUT_RATE = 0.05  # of invocations
WINDOW = 8
BATCH = 5
# Attributes that say when something was written or how often, not what: they differ between any
# two runs (a parcel's version counts its writes: scans of one parcel in more batches, more writes).
VOLATILE = {"decided_at", "expires_at", "updated_at", "last_heard", "version", "raised_at", "writer"}
# Which writer counted an order, and so which shard of a seller holds it, is the function
# container's (a name drawn when it starts, a new one after a failure): not what is counted.
WRITER_SLOT = "~"
SHARD = re.compile(r"^(seller#.*)~\d+$")


class FunctionTimedOut(BaseException):
    """The invocation ran past its Timeout: Lambda stops it wherever it is (not an Exception)."""


def stream(now: datetime) -> dict[str, list[str]]:
    """The messages of each phase, as bodies."""
    orders = []
    for i in range(36):
        order = make_order(f"o-c{i:03d}", buyer_id=f"b-c{i:03d}", card=f"fp-c{i:03d}", minutes_later=i)
        # Every entity its own: what an order sees then does not depend on arrival order, so any
        # two runs must decide alike (serving is defined by arrival; see test_queue_parity).
        order["seller"] = {"id": f"s-c{i:03d}"}
        order["shipping"]["address"] = f"ul. Tverskaya 7, kv {i}"
        order["ip"] = f"95.165.{i // 200}.{i % 200 + 1}"
        orders.append(json.dumps(order))
    scans = []
    for p in range(12):
        statuses = ["INFO_RECEIVED", "IN_TRANSIT", "EXCEPTION" if p % 4 == 0 else "CUSTOMS"]
        if p % 3 == 1 and p % 4:  # (an EXCEPTION then DELIVERED alerts or not by how they are batched)
            statuses.append("DELIVERED")
        for n, status in enumerate(statuses):
            at = now - timedelta(hours=30 - 6 * n)
            scans.append(
                json.dumps(
                    {
                        "event_id": f"ev-c{p}-{n}",
                        "parcel_id": f"LP-C{p:02d}",
                        "order_id": f"o-c{p:03d}",
                        "carrier": "CAINIAO",
                        "status": status,
                        "occurred_at": at.isoformat(),
                        "location": {"country": "RU", "region": "RU-NVS", "facility": "sorting centre"},
                        "origin_country": "CN",
                        "destination_region": "RU-NVS",
                    }
                )
            )
    chargebacks = [
        json.dumps(
            {
                "order_id": f"o-c{i:03d}",
                "kind": "chargeback" if i % 2 else "legit_confirmed",
                "reported_at": (BASE_TIME + timedelta(hours=2, minutes=i)).isoformat(),
            }
        )
        for i in range(0, 36, 3)
    ]
    return {"orders": orders, "scans": scans, "feedback": chargebacks}


@dataclass
class Chaos:
    rng: random.Random
    on: bool = False
    faults: dict[str, int] = field(default_factory=dict)
    timeouts: int = 0
    deliveries: int = 0
    invocations: int = 0
    failed_records: int = 0
    repeated_alerts: int = 0
    repeated_events: int = 0
    _kill_after: int | None = None

    def _count(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def before_call(self, event_name: str, **kwargs: Any) -> Any:
        if self._kill_after is not None:
            self._kill_after -= 1
            if self._kill_after <= 0:
                self._kill_after = None
                raise FunctionTimedOut()
        if not self.on or self.rng.random() >= FAULT_RATE:
            return None
        operation = event_name.rsplit(".", 1)[-1]
        kind = self.rng.choice(["throttle", "timeout", "conflict", "timeout after write"])
        if kind == "conflict" and operation != "TransactWriteItems":
            kind = "throttle"
        if kind == "timeout after write" and operation not in {"TransactWriteItems", "UpdateItem", "PutItem"}:
            kind = "timeout"
        self._count(kind)
        if kind == "timeout":
            raise ReadTimeoutError(endpoint_url="http://dynamodb.local")
        if kind == "timeout after write":
            kwargs["context"]["dozor_chaos_fail_after"] = True
            return None
        code, extra = "ProvisionedThroughputExceededException", {}
        if kind == "conflict":
            count = len(kwargs["params"].get("TransactItems", [])) or 1
            code = "TransactionCanceledException"
            extra = {
                "CancellationReasons": [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (count - 1)
            }
        error = {"Error": {"Code": code, "Message": "chaos"}, **extra}
        return type("Response", (), {"status_code": 400, "headers": {}})(), error

    def after_call(self, context: dict[str, Any], **_: Any) -> None:
        if context.pop("dozor_chaos_fail_after", False):
            raise ReadTimeoutError(endpoint_url="http://dynamodb.local")

    def invoke(self, handler: Callable[..., Any], bodies: list[str], context: Any) -> list[int]:
        """One invocation; the positions of the records to redeliver."""
        self.invocations += 1
        event = sqs_event(bodies)
        if self.on and self.rng.random() < TIMEOUT_RATE:
            self._kill_after = self.rng.randint(1, 6)  # dies at one of its next DynamoDB calls
        try:
            result = handler(event, context)
        except FunctionTimedOut:
            self.timeouts += 1
            return list(range(len(bodies)))
        except Exception:  # the function raised (every record failed): SQS redelivers the batch
            self.failed_records += len(bodies)
            return list(range(len(bodies)))
        finally:
            self._kill_after = None
        ids = [r["messageId"] for r in event["Records"]]
        failed = [ids.index(f["itemIdentifier"]) for f in result["batchItemFailures"]]
        self.failed_records += len(failed)
        return failed


def deliver(chaos: Chaos, handler: Callable[..., Any], bodies: list[str], context: Any) -> None:
    """Every body delivered (1-3 times and shuffled within a window under chaos) until none fails."""
    queue = []
    for body in bodies:
        queue += [body] * (chaos.rng.randint(1, 3) if chaos.on else 1)
    if chaos.on:
        for start in range(0, len(queue), WINDOW):
            window = queue[start : start + WINDOW]
            chaos.rng.shuffle(window)
            queue[start : start + WINDOW] = window
    rounds = 0
    while queue:
        rounds += 1
        assert rounds < 500, "the stream does not converge"
        batch, queue = queue[:BATCH], queue[BATCH:]
        chaos.deliveries += len(batch)
        queue += [batch[i] for i in chaos.invoke(handler, batch, context)]


def _normal(value: Any) -> Any:
    if isinstance(value, dict) and set(value) in ({"SS"}, {"NS"}):  # sets come back in any order
        return {k: sorted(v) for k, v in value.items()}
    if isinstance(value, dict):
        kept = (k for k in sorted(value) if k not in VOLATILE and not k.startswith(WRITER_SLOT))
        return {k: _normal(value[k]) for k in kept}
    if isinstance(value, str) and SHARD.match(value):
        return SHARD.sub(r"\1", value)
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _normal(json.loads(value))
        except ValueError:
            return value
    return value


def _table(local: LocalStack, logical_id: str) -> list[Any]:
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=local.physical_id(logical_id))
    items = [_normal(i) for page in pages for i in page["Items"]]
    return sorted(items, key=lambda i: json.dumps(i, sort_keys=True))


def _drain(local: LocalStack, logical_id: str) -> list[str]:
    sqs, url, bodies = boto3.client("sqs"), local.queue_url(logical_id), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return bodies


@contextmanager
def deployed(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> Iterator[LocalStack]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        local = LocalStack.deploy(TEMPLATE)
        # One hashing key for both runs (each deploy generates its own): pseudonyms must match.
        boto3.client("secretsmanager").put_secret_value(
            SecretId=local.physical_id("HashKeySecret"), SecretString="chaos-hash-key-0123456789abcdef"
        )
        for function in ("ScoreOrderFunction", "ShipmentEventsFunction", "FeedbackFunction"):
            for name, value in local.env_for(function).items():
                monkeypatch.setenv(name, value)
        monkeypatch.setenv("PARCEL_MODEL_DIR", str(model_dir))
        for cache in (dependencies, feedback_recorder, shipment_dependencies, parcel_loss_model, _queue):
            cache.cache_clear()
        yield local
        for cache in (dependencies, feedback_recorder, shipment_dependencies, parcel_loss_model, _queue):
            cache.cache_clear()
        parameters.clear_caches()
    boto3.DEFAULT_SESSION = None


def run(
    monkeypatch: pytest.MonkeyPatch, model_dir: Path, messages: dict[str, list[str]], chaos: Chaos
) -> Any:
    with deployed(monkeypatch, model_dir) as local:
        bus = local.physical_id("DecisionBus")
        sqs, eb = boto3.client("sqs"), boto3.client("events")
        probe = sqs.create_queue(QueueName=f"probe-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=probe, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        eb.put_rule(
            Name="probe", EventBusName=bus, EventPattern=json.dumps({"detail-type": ["Dozor Decision"]})
        )
        eb.put_targets(Rule="probe", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
        session = boto3._get_default_session()  # before any client is built: they copy its hooks
        session.events.register_first("before-call.dynamodb", chaos.before_call)
        session.events.register_first("after-call.dynamodb", chaos.after_call)

        def context(function: str) -> Any:
            return lambda_context(local.function(function), local.env_for(function))

        chaos.on = chaos.rng is not None and chaos.on
        deliver(chaos, order_events.lambda_handler, messages["orders"], context("OrderEventsFunction"))
        deliver(chaos, shipment_events.lambda_handler, messages["scans"], context("ShipmentEventsFunction"))
        outcomes = _drain(local, "FeedbackQueue")  # parcel outcomes the scans reported
        deliver(chaos, feedback.lambda_handler, messages["feedback"] + outcomes, context("FeedbackFunction"))
        chaos.on = False
        events: dict[str, int] = {}
        while got := sqs.receive_message(QueueUrl=probe, MaxNumberOfMessages=10).get("Messages", []):
            for m in got:
                order_id = json.loads(m["Body"])["detail"]["order_id"]
                events[order_id] = events.get(order_id, 0) + 1
                sqs.delete_message(QueueUrl=probe, ReceiptHandle=m["ReceiptHandle"])
        alert_messages = [
            json.dumps(_normal(json.loads(b)), sort_keys=True) for b in _drain(local, "AlertsQueue")
        ]
        chaos.repeated_alerts = len(alert_messages) - len(set(alert_messages))
        chaos.repeated_events = sum(events.values()) - len(events)
        reviews: dict[str, int] = {}
        for body in _drain(local, "ReviewQueue"):
            order_id = json.loads(body)["decision"]["order_id"]
            reviews[order_id] = reviews.get(order_id, 0) + 1
        return {
            "decisions": _table(local, "DecisionsTable"),
            "features": _table(local, "FeaturesTable"),
            "labels": _table(local, "LabelsTable"),
            "parcels": _table(local, "ShipmentsTable"),
            "alerts": _table(local, "AlertsTable"),
            # The alert topic is at-least-once (a publish whose outbox entry was not struck off is
            # repeated; consumers dedupe on alert_id): compared as a set, repeats counted.
            "alert messages": sorted(set(alert_messages)),
            # Published once per stored decision, except when an invocation dies (or its store
            # fails three times) between the publish and striking it off the outbox: then again.
            # Consumers dedupe on detail.event_id; compared as the set of orders, repeats counted.
            "decision events": sorted(events),
            "reviews": reviews,
            "pending": _drain(local, "PendingCommitsQueue"),
            "quarantined": _drain(local, "QuarantineQueue"),
        }


def test_chaos_run_ends_where_a_clean_run_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model_dir = build_parcel_model(tmp_path_factory.mktemp("parcel_model"))
    messages = stream(datetime.now(UTC).replace(microsecond=0))
    clean = run(monkeypatch, model_dir, messages, Chaos(random.Random(0), on=False))
    started = time.perf_counter()
    chaos = Chaos(random.Random(5), on=True)
    messy = run(monkeypatch, model_dir, messages, chaos)
    took = time.perf_counter() - started

    print(
        f"chaos: {sum(len(v) for v in messages.values())} messages, {chaos.deliveries} deliveries in "
        f"{chaos.invocations} invocations, {sum(chaos.faults.values())} DynamoDB faults {chaos.faults}, "
        f"{chaos.timeouts} function timeouts, {chaos.failed_records} records redelivered, "
        f"{chaos.repeated_alerts} alert messages and {chaos.repeated_events} decision events repeated, "
        f"{took:.1f} s"
    )
    assert sum(chaos.faults.values()) >= 10 and chaos.timeouts >= 1  # the chaos happened
    assert len(clean["decisions"]) == 36 and len(clean["decision events"]) == 36
    assert clean["quarantined"] == [] and clean["pending"] == []
    for part in clean:
        assert messy[part] == clean[part], part

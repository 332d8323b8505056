"""Handlers in-process on moto's in-process AWS: the stack, and the orders and events they are fed."""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from dozor.domain.aggregates import shard_pks

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
BASE_TIME = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@dataclass
class Stack:
    """The deployed emulator resources plus what the tests observe of them."""

    local: Any
    context: Any  # a Lambda context for ScoreOrderFunction
    calls: list[tuple[str, str]]

    def table(self, logical_id: str) -> str:
        return str(self.local.physical_id(logical_id))

    def decision_count(self) -> int:
        ddb = boto3.client("dynamodb")
        return int(ddb.scan(TableName=self.table("DecisionsTable"), Select="COUNT")["Count"])

    def feature_item(self, pk: str, sk: str) -> dict[str, Any]:
        """An entity's item as a read sees it: a sharded entity's shards summed (first_seen: least)."""
        ddb = boto3.resource("dynamodb").Table(self.table("FeaturesTable"))
        merged: dict[str, Any] = {}
        for shard in shard_pks(pk, pk.split("#", 1)[0]):
            item = ddb.get_item(Key={"pk": shard, "sk": sk}).get("Item", {})
            for k, raw in item.items():
                v = float(raw) if hasattr(raw, "as_tuple") else raw
                if k not in merged:
                    merged[k] = v
                elif k == "first_seen":
                    merged[k] = min(merged[k], v)
                elif isinstance(v, float) and k != "expires_at":
                    merged[k] += v
        return merged

    def decision_events(self, probe: str) -> Callable[[], list[dict[str, Any]]]:
        """A reader of the decision events published on the bus from now on: a rule delivers them
        to a probe queue named ``probe``; each call returns those not returned before."""
        sqs, eb = boto3.client("sqs"), boto3.client("events")
        bus = self.local.physical_id("DecisionBus")
        url = sqs.create_queue(QueueName=probe)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        eb.put_rule(
            Name=probe, EventBusName=bus, EventPattern=json.dumps({"detail-type": ["Dozor Decision"]})
        )
        eb.put_targets(Rule=probe, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])

        def read() -> list[dict[str, Any]]:
            seen = []
            while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                for m in messages:
                    seen.append(json.loads(m["Body"]))
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            return seen

        return read

    def drain(self, logical_id: str) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        url = self.local.queue_url(logical_id)
        bodies = []
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return bodies
            for m in messages:
                bodies.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def make_order(
    order_id: str,
    *,
    buyer_id: str = "b-moscow-1",
    minutes_later: float = 0,
    card: str = "fp-4f2a9c",
    amount: float = 8990.0,
) -> dict[str, Any]:
    """A realistic order: a Moscow buyer, a Shenzhen seller, a phone case and earbuds."""
    return {
        "order_id": order_id,
        "created_at": (BASE_TIME + timedelta(minutes=minutes_later)).isoformat(),
        "amount": amount,
        "currency": "RUB",
        "channel": "app",
        "buyer": {
            "id": buyer_id,
            "email": f"{buyer_id}@yandex.ru",
            "phone": "+79161234567",
            "account_created_at": "2024-03-02T12:00:00+03:00",
        },
        "seller": {"id": "s-shenzhen-42"},
        "ip": "95.165.10.20",
        "ip_country": "RU",
        "device_id": f"dev-{buyer_id}",
        "payment": {"method": "card", "card_fingerprint": card, "card_bin": "427600", "card_country": "RU"},
        "shipping": {
            "country": "RU",
            "region": "RU-MOW",
            "city": "Moscow",
            "postal_code": "125009",
            # crc32, not hash(): str hashes differ per process, and so would which buyers share a flat
            "address": f"ul. Tverskaya 7, kv {zlib.crc32(buyer_id.encode()) % 200}",
        },
        "items": [
            {"sku": "CASE-IP15", "category": "phones", "quantity": 1, "unit_price": 990.0},
            {"sku": "EARBUDS-X2", "category": "electronics", "quantity": 1, "unit_price": 8000.0},
        ],
    }


def api_event(
    method: str,
    path: str,
    body: dict[str, Any] | str | None = None,
    path_parameters: dict[str, str] | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, built on the shape of events/api_score_order.json."""
    event: dict[str, Any] = json.loads((EVENTS / "api_score_order.json").read_text())
    route_path = path
    if path_parameters:
        for name, value in path_parameters.items():
            route_path = route_path.replace(value, "{" + name + "}")
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    event.update(
        routeKey=f"{method} {route_path}",
        rawPath=path,
        body=base64.b64encode(text.encode()).decode() if base64_body and text else text,
        isBase64Encoded=base64_body,
        pathParameters=path_parameters or {},
    )
    event["requestContext"]["http"].update(method=method, path=path)
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    if body is None:
        event.pop("body", None)
    return event


def sqs_event(bodies: list[str], sample: str = "sqs_order_events.json") -> dict[str, Any]:
    """An SQS event with one record per body, in the shape of the sample event ``events/<sample>``."""
    template = json.loads((EVENTS / sample).read_text())["Records"][0]
    records = []
    for body in bodies:
        record = json.loads(json.dumps(template))
        record.update(messageId=str(uuid.uuid4()), body=body, receiptHandle=str(uuid.uuid4()))
        records.append(record)
    return {"Records": records}

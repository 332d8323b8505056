"""DynamoDB writes per scored order, counted from the real TransactWriteItems on moto.

The scoring service is built by the ScoreOrder function's own wiring against template.yaml's
tables (in-process moto), and every TransactWriteItems it sends is captured with a botocore hook.
Write units follow DynamoDB's billing: an item costs one unit per started KB of its size
(attribute names plus values; an update pays for the larger of the item before and after), and a
transactional write costs double. Condition checks in a transaction are billed as writes too.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

KB = 1024


def attribute_size(value: Mapping[str, Any]) -> int:
    """Bytes DynamoDB counts for one attribute value (its low-level JSON form)."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return _number_size(str(inner))
    if kind == "B":
        return len(inner if isinstance(inner, bytes) else str(inner).encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in inner)
    if kind == "NS":
        return sum(_number_size(n) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in inner.items())
    raise ValueError(f"unknown attribute type {kind}")


def _number_size(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits
    return math.ceil(max(len(digits), 1) / 2) + 1


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(size: int, transactional: bool = True) -> int:
    return max(1, math.ceil(size / KB)) * (2 if transactional else 1)


def measure(payloads: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Score `payloads` in order through the ScoreOrder wiring on moto; writes per order."""
    import boto3  # noqa: PLC0415 - the bench's AWS side is loaded only when it runs
    from moto import mock_aws  # noqa: PLC0415

    from dozor.domain.contracts import Order  # noqa: PLC0415
    from dozor.handlers.fraud.wiring import dependencies  # noqa: PLC0415
    from dozor.handlers.wiring import logger  # noqa: PLC0415
    from dozor_local.stack import LocalStack  # noqa: PLC0415

    saved = dict(os.environ)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    transactions: list[dict[str, Any]] = []
    try:
        with mock_aws():
            local = LocalStack.deploy()
            os.environ.update(local.env_for("ScoreOrderFunction"))
            reader = boto3.Session().client("dynamodb")  # not hooked: reads item sizes around a write

            def current_size(key_of: Mapping[str, Any]) -> int:
                found = reader.get_item(TableName=key_of["TableName"], Key=key_of["Key"], ConsistentRead=True)
                return item_size(found.get("Item", {}))

            def before(params: dict[str, Any], **_: Any) -> None:
                record = {"items": copy.deepcopy(params["TransactItems"]), "before": []}
                for entry in params["TransactItems"]:
                    (kind, body), *_ = entry.items()
                    record["before"].append(current_size(body) if kind == "Update" else 0)
                transactions.append(record)

            def after(http_response: Any, parsed: Mapping[str, Any], **_: Any) -> None:
                record = transactions[-1]
                record["ok"] = "Error" not in parsed
                record["after"] = [
                    current_size(body) if kind == "Update" else 0
                    for entry in record["items"]
                    for kind, body in entry.items()
                ]

            session = boto3._get_default_session()  # where the wiring's clients come from
            session.events.register("before-parameter-build.dynamodb.TransactWriteItems", before)
            session.events.register("after-call.dynamodb.TransactWriteItems", after)
            logger.setLevel("ERROR")  # the bench prints one JSON object; the functions' logs stay out
            dependencies.cache_clear()
            scoring = dependencies().scoring
            for payload in payloads:
                # Outside the latency budget: moto is slower than DynamoDB, and a decision handed to
                # the pending queue for time would be written later, outside this count.
                scoring.commit(scoring.prepare([Order.model_validate(payload)], within_budget=False)[0])
            dependencies.cache_clear()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        boto3.DEFAULT_SESSION = None
    return _summary(transactions, len(payloads))


def _summary(transactions: list[dict[str, Any]], orders: int) -> dict[str, float]:
    items = units = puts = updates = checks = 0
    largest = 0
    for record in transactions:
        if not record.get("ok"):
            continue
        for entry, before, after in zip(record["items"], record["before"], record["after"], strict=True):
            (kind, body), *_ = entry.items()
            if kind == "Put":
                size = item_size(body["Item"])
                puts += 1
            elif kind == "Update":
                size = max(before, after)
                updates += 1
            elif kind == "ConditionCheck":
                size = max(before, after, 1)
                checks += 1
            else:  # Delete
                size = max(before, 1)
            items += kind != "ConditionCheck"
            units += write_units(size)
            largest = max(largest, size)
    return {
        "orders_written": orders,
        "transactions_per_order": round(sum(1 for t in transactions if t.get("ok")) / orders, 2),
        "items_written_per_order": round(items / orders, 2),
        "puts_per_order": round(puts / orders, 2),
        "updates_per_order": round(updates / orders, 2),
        "condition_checks_per_order": round(checks / orders, 2),
        "write_units_per_order": round(units / orders, 2),
        "largest_item_bytes": largest,
    }

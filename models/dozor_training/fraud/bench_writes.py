"""DynamoDB writes per scored order, counted from the real requests on moto.

The scoring service is built by the ScoreOrder function's own wiring against template.yaml's
tables (in-process moto), and every write request it sends (PutItem, UpdateItem, DeleteItem,
TransactWriteItems, BatchWriteItem) is captured with botocore hooks. Write units follow
DynamoDB's billing: an item costs one unit per started KB of its size (attribute names plus
values); a put or an update pays for the larger of the item before and after, a conditional
write that is refused still pays for the item it was checked against, and a transactional write
costs double.

Two cases (`measure`):

- typical: the last orders of a simulated history, scored against a Features table holding
  what that history left behind (written in as the scoring writer's own items, so a busy
  seller's shard holds every bucket, as it does in production);
- top seller: one order for a seller whose shard holds a peak's worth of buckets (2,000
  orders/s over the shards: every 5-minute, hourly and daily bucket full for 31 days, large
  numbers) and the idempotency slots of 40 writers (1,200 containers at a 20,000/s peak over 32
  shards).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

KB = 1024
WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")


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


def write_units(size: int, transactional: bool = False) -> int:
    return max(1, math.ceil(size / KB)) * (2 if transactional else 1)


@dataclass
class Write:
    """One item written by one request, as billed."""

    operation: str
    table: str
    key: str
    size: int  # bytes billed: the larger of before and after
    units: int


@dataclass
class WriteMeter:
    """Every DynamoDB write a boto3 session sends, with the sizes DynamoDB bills it by.

    Item sizes before and after a write are read with a client of another session (not
    metered); the request itself is never changed.
    """

    reader: Any
    writes: list[Write] = field(default_factory=list)
    read_units: float = 0.0  # items of at most 4 KB: 0.5 a key eventually consistent, 1 strongly
    _pending: list[tuple[str, list[tuple[str, dict[str, Any]]], list[int]]] = field(default_factory=list)

    def install(self, emitter: Any) -> None:
        """Meter the writes (and reads) of a session or a client (anything with ``.events``)."""
        emitter.events.register("before-parameter-build.dynamodb.BatchGetItem", self._read)
        emitter.events.register("before-parameter-build.dynamodb.GetItem", self._read)
        for op in WRITES:
            emitter.events.register(f"before-parameter-build.dynamodb.{op}", self._before)
            emitter.events.register(f"after-call.dynamodb.{op}", self._after)

    def _read(self, params: dict[str, Any], **_: Any) -> None:
        if "RequestItems" in params:
            for request in params["RequestItems"].values():
                self.read_units += len(request["Keys"]) * (1.0 if request.get("ConsistentRead") else 0.5)
        else:
            self.read_units += 1.0 if params.get("ConsistentRead") else 0.5

    def _current(self, table: str, key: Mapping[str, Any]) -> tuple[int, bool]:
        found = self.reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return (item_size(found), True) if found else (0, False)

    def _parts(self, operation: str, params: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """(kind, body) per item the request writes; a body has TableName and Key (or Item)."""
        if operation == "TransactWriteItems":
            return [next(iter(entry.items())) for entry in params["TransactItems"]]
        if operation == "BatchWriteItem":
            return [
                ("Put", {"TableName": t, **r["PutRequest"]})
                if "PutRequest" in r
                else ("Delete", {"TableName": t, **r["DeleteRequest"]})
                for t, requests in params["RequestItems"].items()
                for r in requests
            ]
        kind = {"PutItem": "Put", "UpdateItem": "Update", "DeleteItem": "Delete"}[operation]
        return [(kind, dict(params))]

    def _key(self, body: Mapping[str, Any]) -> dict[str, Any]:
        if "Key" in body:
            return dict(body["Key"])
        table = self.reader.describe_table(TableName=body["TableName"])["Table"]
        return {k["AttributeName"]: body["Item"][k["AttributeName"]] for k in table["KeySchema"]}

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        operation = model.name
        parts = [(kind, copy.deepcopy(body)) for kind, body in self._parts(operation, params)]
        sizes = [self._current(body["TableName"], self._key(body))[0] for _, body in parts]
        self._pending.append((operation, parts, sizes))

    def _after(self, parsed: Mapping[str, Any], model: Any, **_: Any) -> None:
        operation, parts, before = self._pending.pop()
        failed = "Error" in parsed
        transactional = operation == "TransactWriteItems"
        for (kind, body), size_before in zip(parts, before, strict=True):
            key = self._key(body)
            if kind == "Put" and not failed:
                size = max(item_size(body["Item"]), size_before)
            else:  # an update, a delete, a refused condition: the item as it stands and stood
                size = max(size_before, self._current(body["TableName"], key)[0])
            label = "#".join(str(next(iter(v.values()))) for v in key.values())
            self.writes.append(
                Write(operation, body["TableName"], label, size, write_units(size, transactional))
            )

    def summary(self, orders: int) -> dict[str, float]:
        distinct = {(w.table, w.key) for w in self.writes}
        return {
            "orders_written": orders,
            "write_requests_per_order": round(len(self.writes) / orders, 2),
            "items_written_per_order": round(len(distinct) / orders, 2),
            "write_units_per_order": round(sum(w.units for w in self.writes) / orders, 2),
            "read_units_per_order": round(self.read_units / orders, 2),
            "transactions_per_order": round(
                sum(w.operation == "TransactWriteItems" for w in self.writes) / orders, 2
            ),
            "largest_item_bytes": max((w.size for w in self.writes), default=0),
        }


@contextmanager
def scoring_stack() -> Iterator[tuple[Any, Any, Any]]:
    """The ScoreOrder wiring on in-process moto: (scoring service, its store, the FeaturesTable name)."""
    import boto3  # noqa: PLC0415 - the bench's AWS side is loaded only when it runs
    from moto import mock_aws  # noqa: PLC0415

    from dozor.handlers.fraud.wiring import dependencies  # noqa: PLC0415
    from dozor.handlers.wiring import logger  # noqa: PLC0415
    from dozor_local.stack import LocalStack  # noqa: PLC0415

    saved, saved_level = dict(os.environ), logger.log_level
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            local = LocalStack.deploy()
            os.environ.update(local.env_for("ScoreOrderFunction"))
            logger.setLevel("ERROR")  # the bench prints one JSON object; the functions' logs stay out
            dependencies.cache_clear()
            deps = dependencies()
            yield deps.scoring, deps.store, local.physical_id("FeaturesTable")
            dependencies.cache_clear()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        logger.setLevel(saved_level)  # the functions' logger is the process's: as it was found
        boto3.DEFAULT_SESSION = None


def preload(
    client: Any, table: str, items: Mapping[tuple[str, str], Mapping[str, object]], shard: int
) -> None:
    """Write in-memory items to the Features table, a sharded entity's into the writer's shard."""
    from dozor.domain import aggregates as agg  # noqa: PLC0415

    for key, values in items.items():
        pk, sk = agg.shard_key(key, shard)
        stored: dict[str, Any] = {"pk": {"S": pk}, "sk": {"S": sk}}
        for name, value in values.items():
            if isinstance(value, set | frozenset):
                stored[name] = {"SS": sorted(str(v) for v in value)}
            elif isinstance(value, int | float):
                stored[name] = {"N": repr(float(value)) if not float(value).is_integer() else str(int(value))}
            else:
                stored[name] = {"S": str(value)}
        client.put_item(TableName=table, Item=stored)


def top_seller_item(seller: str, at: datetime, writers: int = 40) -> dict[tuple[str, str], dict[str, object]]:
    """A top seller's shard at a peak: every bucket of its windows full (2,000 orders/s over the
    shards, 3,000 RUB an order) and the idempotency slots of ``writers`` containers."""
    from dozor.domain import aggregates as agg  # noqa: PLC0415

    items: dict[tuple[str, str], dict[str, object]] = {}
    per_second = 2000 / agg.SHARDS["seller"]
    entity = agg.Entity("seller", seller)
    for minutes in range(0, 31 * 24 * 60, 5):  # one update per 5-minute slot, as many orders as it held
        (update,) = agg.updates_for(entity, at - timedelta(minutes=minutes + 5), 3000.123)
        orders = per_second * 300
        update.add = {k: v * orders for k, v in update.add.items()}
        agg.apply_updates(items, [update])
    item = items[(entity.pk, agg.PROFILE)]
    for n in range(writers):
        item[f"~w{n:04d}"] = agg.b36(int(time.time()) // 3600) + "x" * 8  # as the adapter writes them
    # Pruned as the store's own writes prune it: only what the windows and the slack still read
    agg.prune(item, int(at.timestamp()) // agg.FIVE_MINUTES)
    return items


def measure(
    payloads: Sequence[Mapping[str, Any]], warm: Sequence[Mapping[str, Any]] = ()
) -> dict[str, float]:
    """Score ``payloads`` in order through the ScoreOrder wiring on moto, after ``warm`` was
    replayed into the Features table; then one top seller's order. Writes per order, billed."""
    import boto3  # noqa: PLC0415

    from dozor.adapters.memory import CollectingReviewQueue, InMemoryDecisionStore  # noqa: PLC0415
    from dozor.domain import aggregates as agg  # noqa: PLC0415
    from dozor.domain.contracts import Order  # noqa: PLC0415
    from dozor.domain.fraud.scoring import OrderScoring  # noqa: PLC0415

    with scoring_stack() as (scoring, store, table):
        reader = boto3.Session().client("dynamodb")  # not metered: reads item sizes around a write
        if warm:
            memory = InMemoryDecisionStore()
            offline = OrderScoring(memory, CollectingReviewQueue(), scoring.model, scoring._hasher)
            for payload in warm:
                offline.commit(offline.prepare([Order.model_validate(payload)], within_budget=False)[0])
            # As the store holds them: every write prunes what no window reads any more
            newest = int(Order.model_validate(warm[-1]).created_at.timestamp()) // agg.FIVE_MINUTES
            for held in memory.aggregates.items.values():
                agg.prune(held, newest)
            preload(reader, table, memory.aggregates.items, store.shard)
        meter = WriteMeter(reader)
        meter.install(store._client.meta)  # the scoring store's own client
        for payload in payloads:
            # Outside the latency budget: moto is slower than DynamoDB, and a decision handed to
            # the pending queue for time would be written later, outside this count.
            scoring.commit(scoring.prepare([Order.model_validate(payload)], within_budget=False)[0])
        figures = meter.summary(len(payloads))
        typical_writes = list(meter.writes)
        # The top seller: its shard full, then one more order of it
        last = Order.model_validate(payloads[-1])
        seller = last.seller.id
        preload(reader, table, top_seller_item(seller, last.created_at), store.shard)
        meter.writes.clear()
        meter.read_units = 0.0
        top = last.model_copy(
            update={"order_id": last.order_id + "-top", "created_at": last.created_at + timedelta(seconds=1)}
        )
        scoring.commit(scoring.prepare([top], within_budget=False)[0])
        top_figures = meter.summary(1)
    figures["seller_item_bytes_typical"] = max(
        (w.size for w in typical_writes if "seller#" in w.key), default=0
    )
    figures["decision_item_bytes"] = max(
        (w.size for w in typical_writes if w.operation == "PutItem"), default=0
    )
    figures["top_seller_items_written"] = top_figures["items_written_per_order"]
    figures["top_seller_write_units"] = top_figures["write_units_per_order"]
    figures["top_seller_item_bytes"] = max((w.size for w in meter.writes if "seller#" in w.key), default=0)
    return figures


def measure_simulated(orders: int = 40, days: int = 4, orders_per_day: int = 600) -> dict[str, float]:
    """`measure` on the last ``orders`` of a simulated history, the rest of it replayed in first."""
    from dozor_training.fraud.simulator import SimulationConfig, simulate  # noqa: PLC0415

    history = [s.order for s in simulate(SimulationConfig(days=days, seed=11, orders_per_day=orders_per_day))]
    return measure(history[-orders:], history[:-orders])


def main() -> None:  # pragma: no cover - `python -m dozor_training.fraud.bench_writes`
    import json  # noqa: PLC0415

    print(json.dumps(measure_simulated()))


if __name__ == "__main__":  # pragma: no cover
    main()

"""DynamoDB: the Features table (aggregate containers) and the Decisions table.

One BatchGetItem reads both tables for an order; one TransactWriteItems stores the decision
(conditional on its absence) together with the order's counter updates, so a replay can never
count an order twice. Throttling and conflicts surface as domain errors, never as ClientError.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from dozor.domain.aggregates import ContainerUpdate, Key
from dozor.domain.contracts import Decision, Order
from dozor.domain.feedback import Feedback
from dozor.domain.scoring import AlreadyDecidedError, StoreUnavailableError

BATCH_GET_LIMIT = 100
DECISION_RETENTION = timedelta(days=400)


def _number(value: float) -> dict[str, str]:
    return {"N": repr(float(value)) if not float(value).is_integer() else str(int(value))}


def _from_attr(value: dict[str, Any]) -> object:
    if "N" in value:
        return float(value["N"])
    if "S" in value:
        return value["S"]
    if "SS" in value:
        return set(value["SS"])
    if "BOOL" in value:
        return value["BOOL"]
    if "NS" in value:
        return {float(v) for v in value["NS"]}
    return None


def _item(raw: dict[str, dict[str, Any]]) -> dict[str, object]:
    return {name: _from_attr(value) for name, value in raw.items()}


class DynamoDecisionStore:
    """Implements `dozor.domain.scoring.DecisionStore` on two DynamoDB tables."""

    def __init__(self, client: Any, features_table: str, decisions_table: str, max_attempts: int = 4) -> None:
        self._client = client
        self._features = features_table
        self._decisions = decisions_table
        self._max_attempts = max_attempts

    def load(
        self, order_ids: Sequence[str], keys: Iterable[Key]
    ) -> tuple[dict[str, Decision], dict[Key, dict[str, object]]]:
        requests: list[tuple[str, dict[str, Any]]] = [
            (self._decisions, {"order_id": {"S": oid}}) for oid in dict.fromkeys(order_ids)
        ]
        requests += [(self._features, {"pk": {"S": pk}, "sk": {"S": sk}}) for pk, sk in keys]
        decisions: dict[str, Decision] = {}
        containers: dict[Key, dict[str, object]] = {}
        for start in range(0, len(requests), BATCH_GET_LIMIT):
            chunk: dict[str, dict[str, Any]] = {}
            for table, key in requests[start : start + BATCH_GET_LIMIT]:
                chunk.setdefault(table, {"Keys": []})["Keys"].append(key)
            for table, raw in self._batch_get(chunk):
                if table == self._decisions:
                    decisions[raw["order_id"]["S"]] = Decision.model_validate_json(raw["decision"]["S"])
                else:
                    containers[(raw["pk"]["S"], raw["sk"]["S"])] = _item(raw)
        return decisions, containers

    def _batch_get(self, request: dict[str, dict[str, Any]]) -> Iterable[tuple[str, dict[str, Any]]]:
        # Throttled calls are retried by botocore (the client's retry config); what is left to
        # do here is what it does not retry: the keys DynamoDB answers as unprocessed.
        for attempt in range(self._max_attempts):
            try:
                response = self._client.batch_get_item(RequestItems=request)
            except ClientError as error:
                raise StoreUnavailableError(str(error)) from error
            for table, items in response.get("Responses", {}).items():
                for raw in items:
                    yield table, raw
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return
            time.sleep(0.02 * 2**attempt)  # DynamoDB asks to back off before retrying the rest
        raise StoreUnavailableError("BatchGetItem left keys unprocessed after retries")

    def commit(self, decision: Decision, updates: list[ContainerUpdate], order: Order | None = None) -> None:
        """Store the decision, with the order as given (the domain has hashed its personal data)."""
        expires = int((decision.decided_at + DECISION_RETENTION).timestamp())
        item: dict[str, Any] = {
            "order_id": {"S": decision.order_id},
            "decision": {"S": decision.model_dump_json()},
            "kind": {"S": decision.decision.value},
            "score": _number(decision.score),
            "model_version": {"S": decision.model_version},
            "decided_at": {"S": decision.decided_at.isoformat()},
            "expires_at": _number(expires),
        }
        if order is not None:
            item["order"] = {"S": order.model_dump_json(exclude_none=True)}
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._decisions,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(order_id)",
                }
            }
        ]
        items += [{"Update": self._update(u)} for u in updates]
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            reasons = error.response.get("CancellationReasons") or []
            if (
                code == "TransactionCanceledException"
                and reasons
                and reasons[0].get("Code") == "ConditionalCheckFailed"
            ):
                raise AlreadyDecidedError(decision.order_id) from error
            raise StoreUnavailableError(f"decision for {decision.order_id} not stored: {code}") from error

    def _update(self, update: ContainerUpdate) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds: list[str] = []
        sets: list[str] = []
        for i, (attr, delta) in enumerate(update.add.items()):
            names[f"#a{i}"] = attr
            values[f":a{i}"] = _number(delta)
            adds.append(f"#a{i} :a{i}")
        for i, (attr, members) in enumerate(update.add_to_set.items()):
            names[f"#s{i}"] = attr
            values[f":s{i}"] = {"SS": sorted(members)}
            adds.append(f"#s{i} :s{i}")
        for i, (attr, value) in enumerate(update.set_if_absent.items()):
            names[f"#f{i}"] = attr
            values[f":f{i}"] = _number(value)
            sets.append(f"#f{i} = if_not_exists(#f{i}, :f{i})")
        if update.expires_at is not None:
            names["#ttl"] = "expires_at"
            values[":ttl"] = _number(update.expires_at)
            sets.append("#ttl = :ttl")
        expression = " ".join(
            part
            for part in (
                ("SET " + ", ".join(sets)) if sets else "",
                ("ADD " + ", ".join(adds)) if adds else "",
            )
            if part
        )
        return {
            "TableName": self._features,
            "Key": {"pk": {"S": update.key[0]}, "sk": {"S": update.key[1]}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def set_list_status(self, pk: str, status: str | None) -> None:
        """Put an entity on the allow/block/review list (``None`` takes it off); for ops tooling."""
        key = {"pk": {"S": pk}, "sk": {"S": "P"}}
        if status is None:
            self._client.update_item(
                TableName=self._features,
                Key=key,
                UpdateExpression="REMOVE #l",
                ExpressionAttributeNames={"#l": "list"},
            )
        else:
            self._client.update_item(
                TableName=self._features,
                Key=key,
                UpdateExpression="SET #l = :s",
                ExpressionAttributeNames={"#l": "list"},
                ExpressionAttributeValues={":s": {"S": status}},
            )

    def get_decision(self, order_id: str) -> Decision | None:
        response = self._client.get_item(
            TableName=self._decisions, Key={"order_id": {"S": order_id}}, ConsistentRead=True
        )
        item = response.get("Item")
        return Decision.model_validate_json(item["decision"]["S"]) if item else None


# --- history export (offline) ------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedDecision:
    """A decision as the Decisions table holds it, with its order (personal data hashed) if stored."""

    decision: Decision
    order: Order | None


class DynamoHistory:
    """Reads what production recorded, for export: decisions with their orders, and labels.

    Offline only: whole-table parallel Scans (one thread per segment), never on a request path.
    """

    def __init__(self, client: Any, decisions_table: str, labels_table: str, segments: int = 4) -> None:
        self._client = client
        self._decisions = decisions_table
        self._labels = labels_table
        self._segments = segments

    def decisions(self) -> Iterator[RecordedDecision]:
        for raw in self._scan(self._decisions):
            order = Order.model_validate_json(raw["order"]["S"]) if "order" in raw else None
            yield RecordedDecision(Decision.model_validate_json(raw["decision"]["S"]), order)

    def feedback(self) -> Iterator[Feedback]:
        """Every label item, as the Feedback it was recorded from."""
        for raw in self._scan(self._labels):
            item = _item(raw)
            yield Feedback.model_validate(
                {k: item[k] for k in ("order_id", "parcel_id", "kind", "reported_at") if k in item}
            )

    def _scan(self, table: str) -> Iterator[dict[str, Any]]:
        with ThreadPoolExecutor(max_workers=self._segments) as pool:
            segments = pool.map(lambda s: list(self._scan_segment(table, s)), range(self._segments))
            for items in segments:
                yield from items

    def _scan_segment(self, table: str, segment: int) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("scan")
        try:
            pages = paginator.paginate(TableName=table, Segment=segment, TotalSegments=self._segments)
            for page in pages:
                yield from page.get("Items", [])
        except ClientError as error:
            raise StoreUnavailableError(f"scan of {table} failed: {error}") from error

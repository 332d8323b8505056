"""DynamoDB: the Features table (aggregate containers), the Decisions table and the Labels table.

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

from dozor.domain.aggregates import ContainerUpdate, Entity, Key
from dozor.domain.contracts import Decision, Order
from dozor.domain.feedback import Feedback, Recorded
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


def update_request(table: str, update: ContainerUpdate) -> dict[str, Any]:
    """The TransactWriteItems ``Update`` applying one container update to the Features table."""
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
        "TableName": table,
        "Key": {"pk": {"S": update.key[0]}, "sk": {"S": update.key[1]}},
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


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
            # The feedback function counts a later chargeback or loss against these entities.
            "entity_keys": {"L": [{"S": pk} for pk in sorted({u.key[0] for u in updates})]},
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
        items += [{"Update": update_request(self._features, u)} for u in updates]
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


LABEL_RETENTION = timedelta(days=730)
COUNTED_MARKER = "COUNTED#"  # label_id prefix of the once-per-order-and-verdict markers


class DynamoLabelStore:
    """Implements `dozor.domain.feedback.LabelStore` on the Labels, Decisions and Features tables.

    A label item is keyed by what it names and ``<reported_at>#<kind>``, so a redelivered message
    finds its own item. A marker item per order and verdict (``COUNTED#fraud``) makes sure a
    chargeback followed by a fraud confirmation counts the order once. Label, marker and counter
    updates go in one TransactWriteItems.
    """

    def __init__(self, client: Any, labels_table: str, decisions_table: str, features_table: str) -> None:
        self._client = client
        self._labels = labels_table
        self._decisions = decisions_table
        self._features = features_table

    def entities_of(self, order_id: str) -> list[Entity] | None:
        try:
            response = self._client.get_item(
                TableName=self._decisions,
                Key={"order_id": {"S": order_id}},
                ProjectionExpression="entity_keys",
            )
        except ClientError as error:
            raise StoreUnavailableError(str(error)) from error
        item = response.get("Item")
        if item is None:
            return None
        pks = [value["S"] for value in item.get("entity_keys", {}).get("L", [])]
        return [Entity(*pk.split("#", 1)) for pk in pks]

    def record(self, feedback: Feedback, verdict: str | None, updates: list[ContainerUpdate]) -> Recorded:
        subject = f"order#{feedback.order_id}" if feedback.order_id else f"parcel#{feedback.parcel_id}"
        label = self._label_item(subject, feedback)
        if verdict is None:
            return Recorded.STORED if self._put_label(label) else Recorded.DUPLICATE
        marker = {
            "Put": {
                "TableName": self._labels,
                "Item": {
                    "subject": {"S": subject},
                    "label_id": {"S": COUNTED_MARKER + verdict},
                    "expires_at": label["Put"]["Item"]["expires_at"],
                },
                "ConditionExpression": "attribute_not_exists(label_id)",
            }
        }
        items = [label, marker] + [{"Update": update_request(self._features, u)} for u in updates]
        try:
            self._client.transact_write_items(TransactItems=items)
            return Recorded.COUNTED
        except ClientError as error:
            failed = _failed_conditions(error)
            if failed is None:
                raise StoreUnavailableError(f"feedback for {subject} not stored: {error}") from error
        if 0 in failed:
            return Recorded.DUPLICATE
        # Only the marker stood in the way: the order was counted by an earlier label.
        return Recorded.ALREADY_COUNTED if self._put_label(label) else Recorded.DUPLICATE

    def _label_item(self, subject: str, feedback: Feedback) -> dict[str, Any]:
        item: dict[str, Any] = {
            "subject": {"S": subject},
            "label_id": {"S": f"{feedback.reported_at.isoformat()}#{feedback.kind.value}"},
            "kind": {"S": feedback.kind.value},
            "reported_at": {"S": feedback.reported_at.isoformat()},
            "expires_at": _number(int((feedback.reported_at + LABEL_RETENTION).timestamp())),
        }
        if feedback.order_id:
            item["order_id"] = {"S": feedback.order_id}
        if feedback.parcel_id:
            item["parcel_id"] = {"S": feedback.parcel_id}
        return {
            "Put": {
                "TableName": self._labels,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(label_id)",
            }
        }

    def _put_label(self, label: dict[str, Any]) -> bool:
        """Put a label item on its own; False if it was there already."""
        try:
            self._client.put_item(**label["Put"])
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise StoreUnavailableError(str(error)) from error


def _failed_conditions(error: ClientError) -> set[int] | None:
    """Indexes of the transaction items whose condition failed; None if it failed otherwise."""
    if error.response["Error"]["Code"] != "TransactionCanceledException":
        return None
    reasons = error.response.get("CancellationReasons") or []
    failed = {i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"}
    others = [r for r in reasons if r.get("Code") not in (None, "None", "ConditionalCheckFailed")]
    return failed if failed and not others else None


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
            if raw["label_id"]["S"].startswith(COUNTED_MARKER):
                continue  # bookkeeping of DynamoLabelStore, not a label
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

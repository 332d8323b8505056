"""DynamoDB's attribute values to and from Python, and the counter update every store applies.

Shared by the tables' adapters: a Features-table container update is the same UpdateItem
whether a scored order or a feedback label moves it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from dozor.adapters.aws_errors import DYNAMODB, translated
from dozor.domain.aggregates import ContainerUpdate
from dozor.domain.errors import StoreUnavailableError

BATCH_GET_LIMIT = 100


def number(value: float) -> dict[str, str]:
    return {"N": repr(float(value)) if not float(value).is_integer() else str(int(value))}


def from_attr(value: dict[str, Any]) -> object:
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


def item(raw: dict[str, dict[str, Any]]) -> dict[str, object]:
    return {name: from_attr(value) for name, value in raw.items()}


def update_request(
    table: str, update: ContainerUpdate, guard: tuple[str, str] | None = None, also_remove: Iterable[str] = ()
) -> dict[str, Any]:
    """The UpdateItem (or TransactWriteItems ``Update``) applying one update to the Features table.

    DynamoDB has no MIN: a minimum is a SET conditional on the stored value being absent or
    larger. The condition guards the whole item, ADDs included, so a failed one means the store
    already holds a value at or below it: `minimums_settled` drops it and the write is retried.
    ``guard`` (attribute, value) makes the write idempotent: it sets the attribute to the value,
    on condition that it does not hold it already (see `DynamoDecisionStore`). ``also_remove``
    are attributes to drop with the write (stale buckets).
    """
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    adds: list[str] = []
    sets: list[str] = []
    conditions: list[str] = []
    for i, (attr, delta) in enumerate(update.add.items()):
        names[f"#a{i}"] = attr
        values[f":a{i}"] = number(delta)
        adds.append(f"#a{i} :a{i}")
    for i, (attr, members) in enumerate(update.add_to_set.items()):
        names[f"#s{i}"] = attr
        values[f":s{i}"] = {"SS": sorted(members)}
        adds.append(f"#s{i} :s{i}")
    for i, (attr, value) in enumerate(update.set_min.items()):
        names[f"#m{i}"] = attr
        values[f":m{i}"] = number(value)
        sets.append(f"#m{i} = :m{i}")
        conditions.append(f"(attribute_not_exists(#m{i}) OR #m{i} > :m{i})")
    if guard is not None:
        names["#g"], values[":g"] = guard[0], {"S": guard[1]}
        sets.append("#g = :g")
        conditions.append("(attribute_not_exists(#g) OR #g <> :g)")
    if update.expires_at is not None:
        names["#ttl"] = "expires_at"
        values[":ttl"] = number(update.expires_at)
        sets.append("#ttl = :ttl")
    removes = []
    for i, attr in enumerate(dict.fromkeys(also_remove)):
        names[f"#r{i}"] = attr
        removes.append(f"#r{i}")
    expression = " ".join(
        part
        for part in (
            ("SET " + ", ".join(sets)) if sets else "",
            ("ADD " + ", ".join(adds)) if adds else "",
            ("REMOVE " + ", ".join(removes)) if removes else "",
        )
        if part
    )
    request: dict[str, Any] = {
        "TableName": table,
        "Key": {"pk": {"S": update.key[0]}, "sk": {"S": update.key[1]}},
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
    }
    if values:
        request["ExpressionAttributeValues"] = values
    if conditions:
        request["ConditionExpression"] = " AND ".join(conditions)
    return request


def minimums_settled(updates: list[ContainerUpdate], failed: Iterable[int]) -> list[ContainerUpdate] | None:
    """``updates`` without the minimums of those whose condition failed (by position), or None when
    one of them carries no minimum: then the conflict is real and retrying would not help."""
    result = list(updates)
    for i in failed:
        if not 0 <= i < len(result) or not result[i].set_min:
            return None
        result[i] = replace(result[i], set_min={})
    return result


def batch_get(
    client: Any, request: dict[str, dict[str, Any]], what: str, max_attempts: int = 4
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every item a BatchGetItem request finds, as (table, raw item), re-asking for unprocessed keys.

    Throttled calls are retried by botocore (the client's retry config); what is left to do here
    is what it does not retry: the keys DynamoDB answers as unprocessed.
    """
    for attempt in range(max_attempts):
        with translated(DYNAMODB, what):
            response = client.batch_get_item(RequestItems=request)
        for table, items in response.get("Responses", {}).items():
            for raw in items:
                yield table, raw
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return
        time.sleep(0.02 * 2**attempt)  # DynamoDB asks to back off before retrying the rest
    raise StoreUnavailableError(f"{what}: keys left unprocessed after {max_attempts} attempts")


def chunked_batch_get(
    client: Any, requests: list[tuple[str, dict[str, Any]]], what: str, *, consistent: bool = False
) -> Iterator[tuple[str, dict[str, Any]]]:
    """`batch_get` over any number of (table, key) pairs, at most BATCH_GET_LIMIT keys a call."""
    for start in range(0, len(requests), BATCH_GET_LIMIT):
        chunk: dict[str, dict[str, Any]] = {}
        for table, key in requests[start : start + BATCH_GET_LIMIT]:
            request = chunk.setdefault(table, {"Keys": []})
            request["Keys"].append(key)
            if consistent:
                request["ConsistentRead"] = True
        yield from batch_get(client, chunk, what)

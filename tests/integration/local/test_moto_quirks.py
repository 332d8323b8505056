"""The local stack's moto patches: faster, and the same answers (transactions still all or nothing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models.table import Table

from dozor_local import moto_quirks
from tests.helpers.aws_stack import Stack


def _counter(ddb, table: str, pk: str) -> float | None:
    item = ddb.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": "P"}}).get("Item")
    return float(item["orders"]["N"]) if item else None


def test_failed_transaction_rolls_back_every_touched_item(stack: Stack) -> None:
    ddb = boto3.client("dynamodb")
    features, decisions = stack.table("FeaturesTable"), stack.table("DecisionsTable")
    add = {"UpdateExpression": "ADD orders :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}
    ddb.put_item(TableName=decisions, Item={"order_id": {"S": "o-1"}})
    ddb.update_item(TableName=features, Key={"pk": {"S": "buyer#b"}, "sk": {"S": "P"}}, **add)
    ddb.update_item(TableName=features, Key={"pk": {"S": "card#c"}, "sk": {"S": "P"}}, **add)

    # A transaction that counts the buyer and a new device, then fails on its decision condition
    with pytest.raises(ClientError) as failure:
        ddb.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": features, "Key": {"pk": {"S": "buyer#b"}, "sk": {"S": "P"}}, **add}},
                {
                    "Update": {
                        "TableName": features,
                        "Key": {"pk": {"S": "device#d"}, "sk": {"S": "P"}},
                        **add,
                    }
                },
                {
                    "Put": {
                        "TableName": decisions,
                        "Item": {"order_id": {"S": "o-1"}},
                        "ConditionExpression": "attribute_not_exists(order_id)",
                    }
                },
            ]
        )
    assert failure.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _counter(ddb, features, "buyer#b") == 1
    assert _counter(ddb, features, "device#d") is None
    assert _counter(ddb, features, "card#c") == 1

    # And a transaction that succeeds applies all of it
    ddb.transact_write_items(
        TransactItems=[
            {"Update": {"TableName": features, "Key": {"pk": {"S": "buyer#b"}, "sk": {"S": "P"}}, **add}},
            {
                "Put": {
                    "TableName": decisions,
                    "Item": {"order_id": {"S": "o-2"}},
                    "ConditionExpression": "attribute_not_exists(order_id)",
                }
            },
        ]
    )
    assert _counter(ddb, features, "buyer#b") == 2


# --- each patch answers exactly as plain moto does ----------------------------------------------

_S, _N = ({"AttributeName": n, "AttributeType": t} for n, t in (("pk", "S"), ("due_at", "N")))


def _create_tables(ddb: Any) -> None:
    """Shapes Dozor uses: a hash-only table with a sparse GSI (Shipments), hash + range (Features)."""
    ddb.create_table(
        TableName="parcels",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[_S, _N, {"AttributeName": "due_shard", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "due",
                "KeySchema": [
                    {"AttributeName": "due_shard", "KeyType": "HASH"},
                    {"AttributeName": "due_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    ddb.create_table(
        TableName="counters",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[_S, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )


def _n(value: float) -> dict[str, str]:
    return {"N": str(value)}


# Update expressions as a service sends them, repeated (the cache and the memo's second time),
# and ones moto must refuse: two ADD clauses, overlapping paths, a key attribute, unknown names,
# a type mismatch, a syntax error.
_UPDATES: list[tuple[str, dict[str, str] | None, dict[str, Any] | None]] = [
    ("ADD orders :one, amount :amt", None, {":one": _n(1), ":amt": _n(4990.5)}),
    ("ADD orders :one, amount :amt", None, {":one": _n(1), ":amt": _n(12)}),
    (
        "SET #m0 = :m0 ADD #a0 :a0, #a1 :a1",
        {"#m0": "last", "#a0": "h1", "#a1": "d1"},
        {":m0": _n(5), ":a0": _n(1), ":a1": _n(2)},
    ),
    (
        "SET #m0 = :m0 ADD #a0 :a0, #a1 :a1",
        {"#m0": "last", "#a0": "h2", "#a1": "d1"},
        {":m0": _n(6), ":a0": _n(1), ":a1": _n(2)},
    ),
    (
        "SET #m0 = :m0 ADD #a0 :a0, #a1 :a1",
        {"#m0": "last", "#a0": "h2", "#a1": "h2"},
        {":m0": _n(6), ":a0": _n(1), ":a1": _n(2)},
    ),
    (
        "SET b = if_not_exists(b, :zero) + :one, tags = list_append(if_not_exists(tags, :empty), :t)",
        None,
        {":zero": _n(0), ":one": _n(1), ":empty": {"L": []}, ":t": {"L": [{"S": "x"}]}},
    ),
    ("SET m.inner.deep = :v, m.other = m.other", None, {":v": _n(3)}),
    ("SET m = :map", None, {":map": {"M": {"inner": {"M": {}}, "other": _n(1)}}}),
    ("SET m.inner.deep = :v REMOVE legacy, tags[0]", None, {":v": _n(3)}),
    ("ADD seen :ids DELETE gone :ids", None, {":ids": {"SS": ["a", "b"]}}),
    ("DELETE seen :ids", None, {":ids": {"SS": ["a"]}}),
    ("SET #s = :v, plain = :v ADD orders :v", {"#s": "status"}, {":v": _n(2)}),
    ("set lower = :v add orders :v", None, {":v": _n(3)}),
    ("SET a = :v ADD a :v", None, {":v": _n(1)}),
    ("ADD amount :empty", None, {":empty": {"SS": []}}),
    ("ADD orders :one ADD amount :one", None, {":one": _n(1)}),
    ("SET a = :v, a = :v", None, {":v": _n(1)}),
    ("SET m.inner = :v, m.inner.deep = :v", None, {":v": _n(1)}),
    ("SET sk = :v", None, {":v": {"S": "other"}}),
    ("SET #missing = :v", {"#other": "x"}, {":v": _n(1)}),
    ("ADD amount :s", None, {":s": {"S": "text"}}),
    ("SET a = :v,", None, {":v": _n(1)}),
    ("SET a = a - :v", None, {":v": _n(1)}),
]


def _operations(ddb: Any) -> Iterator[Any]:
    """Every answer of a fixed sequence of writes, transactions and queries (errors as code and text)."""

    def answer(call: Callable[..., Any], **request: Any) -> Any:
        try:
            result = call(**request)
        except ClientError as error:
            return {"error": error.response["Error"], "reasons": error.response.get("CancellationReasons")}
        result.pop("ResponseMetadata", None)
        return result

    for n, (expression, names, values) in enumerate(_UPDATES * 2):
        request: dict[str, Any] = {
            "TableName": "counters",
            "Key": {"pk": {"S": f"seller#{n % 3}"}, "sk": {"S": "P"}},
            "UpdateExpression": expression,
            "ReturnValues": "ALL_NEW",
        }
        request |= {"ExpressionAttributeNames": names} if names else {}
        request |= {"ExpressionAttributeValues": values} if values else {}
        yield answer(ddb.update_item, **request)
        update = {k: v for k, v in request.items() if k != "ReturnValues"}
        yield answer(ddb.transact_write_items, TransactItems=[{"Update": update}])
    # Conditional counter updates as checkout writes them (a first-seen minimum and a writer's
    # guard), repeated (the same condition, names and values: refused the second time), with new
    # values, and one moto must refuse (a value it does not use).
    guarded = "(attribute_not_exists(#m0) OR #m0 > :m0) AND (attribute_not_exists(#g) OR #g <> :g)"
    conditions = [
        (guarded, {":m0": _n(50), ":g": {"S": "w1"}}),
        (guarded, {":m0": _n(50), ":g": {"S": "w1"}}),
        (guarded, {":m0": _n(40), ":g": {"S": "w2"}}),
        (guarded, {":m0": _n(60), ":g": {"S": "w3"}}),
        ("attribute_exists(orders) AND #m0 < :m0", {":m0": _n(1), ":g": {"S": "w4"}}),
        ("attribute_not_exists(#g)", {":m0": _n(1), ":g": {"S": "w5"}, ":unused": _n(0)}),
    ]
    for n, (condition, values) in enumerate(conditions * 2):
        yield answer(
            ddb.update_item,
            TableName="counters",
            Key={"pk": {"S": f"card#{n % 2}"}, "sk": {"S": "P"}},
            UpdateExpression="SET #m0 = :m0, #g = :g ADD orders :one",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#m0": "first_seen", "#g": "writer"},
            ExpressionAttributeValues={**values, ":one": _n(1)},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    for n in range(60):  # parcels in transit carry a due shard; delivered ones leave the index
        item = {"pk": {"S": f"p{n:03d}"}, "due_at": _n(1000 - n * 7), "state": {"S": "moving"}}
        item |= {"due_shard": {"S": f"due#{n % 4}"}} if n % 5 else {}
        yield answer(ddb.put_item, TableName="parcels", Item=item)
    yield answer(
        ddb.transact_write_items,
        TransactItems=[
            {
                "Update": {
                    "TableName": "parcels",
                    "Key": {"pk": {"S": "p001"}},
                    "UpdateExpression": "REMOVE due_shard",
                }
            },
            {
                "Put": {
                    "TableName": "parcels",
                    "Item": {"pk": {"S": "p002"}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ],
    )
    yield answer(
        ddb.update_item, TableName="parcels", Key={"pk": {"S": "p003"}}, UpdateExpression="REMOVE due_shard"
    )
    for shard in ("due#0", "due#1", "due#3", "due#9"):
        for forward in (True, False):
            query = {
                "TableName": "parcels",
                "IndexName": "due",
                "KeyConditionExpression": "due_shard = :s AND due_at <= :until",
                "ExpressionAttributeValues": {":s": {"S": shard}, ":until": _n(800)},
                "ScanIndexForward": forward,
                "Limit": 4,
            }
            while True:
                page = answer(ddb.query, **query)
                yield page
                if "LastEvaluatedKey" not in page:
                    break
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        # parcels come, go and move to the next shard between queries: the next query must see
        # each where it is now (moto's answers hold the index to that)
        n = int(shard[-1])
        yield answer(ddb.delete_item, TableName="parcels", Key={"pk": {"S": f"p0{n}1"}})
        yield answer(
            ddb.batch_write_item,
            RequestItems={
                "parcels": [
                    {"DeleteRequest": {"Key": {"pk": {"S": f"p0{n}2"}}}},
                    {
                        "PutRequest": {
                            "Item": {"pk": {"S": f"new{n}"}, "due_at": _n(5), "due_shard": {"S": shard}}
                        }
                    },
                    {
                        "PutRequest": {
                            "Item": {"pk": {"S": f"p0{n}3"}, "due_at": _n(6), "due_shard": {"S": "due#2"}}
                        }
                    },
                ]
            },
        )
        yield answer(
            ddb.update_item,
            TableName="parcels",
            Key={"pk": {"S": f"p0{len(shard)}{shard[-1]}"}},
            UpdateExpression="SET due_shard = :s",
            ExpressionAttributeValues={":s": {"S": f"due#{int(shard[-1]) + 1}"}},
            ReturnValues="ALL_OLD",
        )
    yield answer(
        ddb.query,
        TableName="parcels",
        IndexName="due",
        KeyConditionExpression="due_shard = :s",
        FilterExpression="due_at > :t",
        ExpressionAttributeValues={":s": {"S": "due#2"}, ":t": _n(700)},
    )
    for n in range(30):
        key = {"pk": {"S": f"buyer#{n % 4}"}, "sk": {"S": f"h{n:02d}"}}
        yield answer(ddb.put_item, TableName="counters", Item=key | {"orders": _n(n)})
    for pk in ("buyer#1", "buyer#9", "seller#0"):
        yield answer(
            ddb.query,
            TableName="counters",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": pk}},
        )
        yield answer(
            ddb.query,
            TableName="counters",
            KeyConditionExpression="pk = :p AND begins_with(sk, :h)",
            ExpressionAttributeValues={":p": {"S": pk}, ":h": {"S": "h1"}},
            ScanIndexForward=False,
            Limit=3,
        )
    yield answer(
        ddb.query,
        TableName="parcels",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p004"}},
    )
    yield answer(
        ddb.query,
        TableName="parcels",
        IndexName="nope",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p004"}},
    )
    for table in ("counters", "parcels"):
        yield sorted(
            answer(ddb.scan, TableName=table)["Items"],
            key=lambda i: (i["pk"]["S"], i.get("sk", {}).get("S", "")),
        )


def _answers(patches: tuple[str, ...]) -> list[Any]:
    with moto_quirks.only(*patches), mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        _create_tables(ddb)
        return list(_operations(ddb))


@pytest.fixture(scope="module")
def plain() -> list[Any]:
    return _answers(())


@pytest.mark.parametrize("patches", [(name,) for name in moto_quirks.PATCHES] + [tuple(moto_quirks.PATCHES)])
def test_a_patch_changes_no_answer_of_moto(plain: list[Any], patches: tuple[str, ...]) -> None:
    patched = _answers(patches)
    assert len(patched) == len(plain)
    for n, (expected, got) in enumerate(zip(plain, patched, strict=True)):
        assert got == expected, f"answer {n} differs with {patches}"
    assert sum(1 for a in plain if isinstance(a, dict) and "error" in a) >= 10  # the refusals ran too


def test_patches_come_off_and_go_back_on() -> None:
    moto_quirks.install()
    installed = Table.query
    with moto_quirks.only():
        plain = Table.query
        assert plain is not installed
    with moto_quirks.only("partition_queries"):
        assert Table.query is not plain
    assert Table.query is not plain  # what was installed before is back on


def test_an_index_is_regrouped_by_the_items_written_and_afresh_after_any_other_write() -> None:
    def due(ddb: Any, shard: str) -> list[str]:
        page = ddb.query(
            TableName="parcels",
            IndexName="due",
            KeyConditionExpression="due_shard = :s",
            ExpressionAttributeValues={":s": {"S": shard}},
        )
        return [item["pk"]["S"] for item in page["Items"]]

    with moto_quirks.only("partition_queries"), mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        _create_tables(ddb)
        for n in range(4):
            item = {"pk": {"S": f"p{n}"}, "due_at": _n(n), "due_shard": {"S": f"due#{n % 2}"}}
            ddb.put_item(TableName="parcels", Item=item)
        assert due(ddb, "due#0") == ["p0", "p2"]
        (grouping,) = moto_quirks._grouped.values()
        ddb.update_item(
            TableName="parcels",
            Key={"pk": {"S": "p1"}},
            UpdateExpression="SET due_shard = :s",
            ExpressionAttributeValues={":s": {"S": "due#0"}},
        )
        ddb.delete_item(TableName="parcels", Key={"pk": {"S": "p2"}})
        assert due(ddb, "due#0") == ["p0", "p1"]
        assert list(moto_quirks._grouped.values()) == [grouping]  # regrouped by the two items alone
        ddb.update_time_to_live(
            TableName="parcels", TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
        )
        assert due(ddb, "due#1") == ["p3"]
        assert list(moto_quirks._grouped.values()) != [grouping]  # a write naming no item: afresh


# Updates a service sends, one item after another: each is planned (moto's walks skipped) but the
# last two, which moto must refuse or decide itself; the item's own set shared by a copy
# (if_not_exists takes the item's value, as moto's evaluator does) and then changed in place.
_SS = {"SS": ["a", "b"]}
_PLANNED: list[tuple[str, dict[str, str] | None, dict[str, Any] | None]] = [
    ("SET a = :one, s = :ab ADD n :one", None, {":one": _n(1), ":ab": _SS}),
    ("SET #copy = if_not_exists(s, :none), #t = if_not_exists(#t, :one)", {"#copy": "c", "#t": "t"}, None),
    ("ADD s :more", None, {":more": {"SS": ["b", "c"]}}),
    ("DELETE s :abc, never_set :abc", None, {":abc": {"SS": ["a", "b", "c"]}}),
    ("set n2 = if_not_exists(n, :zero) remove a, nothing", None, {":zero": _n(0)}),
    ("ADD n :dec, #st :dec SET m = :map, l = :list", {"#st": "status"}, None),
    ("SET big = :big", None, {":big": {"S": "x" * 300_000}}),
    ("SET big2 = :big", None, {":big": {"S": "y" * 300_000}}),  # past the item limit: moto refuses
    ("SET status = :one", None, {":one": _n(1)}),  # a reserved word: moto refuses
]
_PLANNED[1] = (_PLANNED[1][0], _PLANNED[1][1], {":none": {"SS": ["z"]}, ":one": _n(1)})
_PLANNED[5] = (
    _PLANNED[5][0],
    _PLANNED[5][1],
    {":dec": _n(4990.5), ":map": {"M": {"k": {"L": [_n(1)]}}}, ":list": {"L": [{"S": "q"}]}},
)


# On a table with an index: moto checks a SET of a plain name that keys the table or an index
# (its type; not empty), but not one written as a #placeholder.
_PLANNED_PARCELS: list[tuple[str, dict[str, str] | None, dict[str, Any] | None]] = [
    ("SET due_shard = :s, due_at = :n, moving = :s", None, {":s": {"S": "due#1"}, ":n": _n(5)}),
    ("SET due_shard = :e", None, {":e": {"S": ""}}),  # an empty index key: refused
    ("SET due_at = :s", None, {":s": {"S": "soon"}}),  # the wrong type for an index key: refused
    ("SET #d = :e, due_at = :n", {"#d": "due_shard"}, {":e": {"S": ""}, ":n": _n(6)}),
    ("REMOVE due_shard, due_at", None, None),
]


def _planned_answers() -> list[Any]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        _create_tables(ddb)
        answers = []
        steps = [("counters", {"pk": {"S": "x"}, "sk": {"S": "P"}}, step) for step in _PLANNED]
        steps += [("parcels", {"pk": {"S": "p"}}, step) for step in _PLANNED_PARCELS]
        for table, key, (expression, names, values) in steps:
            request: dict[str, Any] = {
                "TableName": table,
                "Key": key,
                "UpdateExpression": expression,
                "ReturnValues": "ALL_NEW",
            }
            request |= {"ExpressionAttributeNames": names} if names else {}
            request |= {"ExpressionAttributeValues": values} if values else {}
            try:
                answers.append(ddb.update_item(**request)["Attributes"])
            except ClientError as error:
                answers.append(error.response["Error"])
        items = [ddb.get_item(TableName=table, Key=key)["Item"] for table, key, _ in (steps[0], steps[-1])]
        return [*answers, *items]


def test_planned_updates_apply_as_moto_does(monkeypatch: pytest.MonkeyPatch) -> None:
    from dozor_local import moto_expressions  # noqa: PLC0415

    with moto_quirks.only():
        expected = _planned_answers()
    planned: list[bool] = []
    real = moto_expressions._planned

    def counting(validator: Any, text: str) -> Any:
        found = real(validator, text)
        planned.append(found is not None)
        return found

    monkeypatch.setattr(moto_expressions, "_planned", counting)
    with moto_quirks.only("planned_updates"):
        got = _planned_answers()
    assert got == expected
    assert planned.count(True) >= 10 and planned.count(False) >= 4  # both ways were taken
    refused = [n for n, answer in enumerate(expected) if "Code" in answer]
    assert refused == [7, 8, 10, 11]
    assert expected[2]["c"] == {"SS": ["a", "b", "c"]}  # the copy shares the set it was taken from

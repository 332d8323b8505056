"""The local stack's faster transaction backups must keep DynamoDB's all-or-nothing semantics."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

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

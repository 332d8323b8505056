"""DynamoDB: the ListEntries table, the record of every allow/block/review list change.

Per entity (``pk``, its key: personal values are keyed hashes) one ``ENTRY`` item holds where it
stands now, and one ``CHANGE#<at>#<id>`` item per change is the audit trail, written together in
one transaction. The entry is conditional on the number of changes read, so two people changing
the same entity at once cannot both win unseen. An entry on a list carries ``listed`` (the list)
and ``listed_at``: the sparse ListIndex lists each list's entities, newest first. ``applied`` says
whether the scoring profile has the change yet (it is set on the Features table right after).
"""

from __future__ import annotations

import uuid
from typing import Any

from dozor.adapters.aws_errors import DYNAMODB, translated
from dozor.domain.errors import ConflictError
from dozor.domain.fraud.lists import ListChange, ListEntry, ListName

LIST_INDEX = "ListIndex"
ENTRY = "ENTRY"
CHANGE = "CHANGE#"


class DynamoListEntries:
    """Implements `dozor.domain.fraud.lists.ListRecords`."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def current(self, entity: str) -> ListEntry | None:
        with translated(DYNAMODB, f"list entry of {entity} not read"):
            item = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": entity}, "sk": {"S": ENTRY}},
                ConsistentRead=True,
            ).get("Item")
        return _entry(item) if item else None

    def record(self, change: ListChange, changes_before: int) -> ListEntry:
        """Store the change and the entry it makes (not yet applied to the scoring profile)."""
        entry: dict[str, Any] = {
            "pk": {"S": change.entity},
            "sk": {"S": ENTRY},
            "change": {"S": change.model_dump_json()},
            "changes": {"N": str(changes_before + 1)},
            "applied": {"BOOL": False},
        }
        if change.list is not None:
            entry["listed"] = {"S": change.list.value}
            entry["listed_at"] = {"S": change.at.isoformat()}
        audit = {
            "pk": {"S": change.entity},
            "sk": {"S": f"{CHANGE}{change.at.isoformat()}#{uuid.uuid4().hex[:8]}"},
            "change": {"S": change.model_dump_json()},
        }
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if changes_before == 0
            else {
                "ConditionExpression": "#n = :n",
                "ExpressionAttributeNames": {"#n": "changes"},
                "ExpressionAttributeValues": {":n": {"N": str(changes_before)}},
            }
        )
        try:
            with translated(DYNAMODB, f"list change of {change.entity} not stored"):
                self._client.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": self._table, "Item": entry, **condition}},
                        {"Put": {"TableName": self._table, "Item": audit}},
                    ]
                )
        except ConflictError as error:
            raise ConflictError(f"{change.shown_as} was changed by someone else meanwhile; retry") from error
        return ListEntry(change, changes_before + 1, applied=False)

    def applied(self, entity: str, changes: int) -> None:
        """The scoring profile has the change numbered `changes` (a later one may have come since)."""
        try:
            with translated(DYNAMODB, f"list entry of {entity} not marked applied"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": entity}, "sk": {"S": ENTRY}},
                    UpdateExpression="SET #a = :true",
                    ConditionExpression="#n = :n",
                    ExpressionAttributeNames={"#a": "applied", "#n": "changes"},
                    ExpressionAttributeValues={":true": {"BOOL": True}, ":n": {"N": str(changes)}},
                )
        except ConflictError:
            pass  # a newer change is on its way; it will mark itself

    def on_list(self, name: ListName, limit: int) -> list[ListEntry]:
        """The entities on a list, most recently added first."""
        with translated(DYNAMODB, f"{name.value} list not read"):
            response = self._client.query(
                TableName=self._table,
                IndexName=LIST_INDEX,
                KeyConditionExpression="#l = :l",
                ExpressionAttributeNames={"#l": "listed"},
                ExpressionAttributeValues={":l": {"S": name.value}},
                ScanIndexForward=False,
                Limit=limit,
            )
        return [_entry(item) for item in response.get("Items", [])]

    def history(self, entity: str, limit: int) -> list[ListChange]:
        """The entity's changes, newest first."""
        with translated(DYNAMODB, f"list history of {entity} not read"):
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :change)",
                ExpressionAttributeValues={":pk": {"S": entity}, ":change": {"S": CHANGE}},
                ScanIndexForward=False,
                Limit=limit,
            )
        return [ListChange.model_validate_json(item["change"]["S"]) for item in response.get("Items", [])]


def _entry(item: dict[str, Any]) -> ListEntry:
    return ListEntry(
        ListChange.model_validate_json(item["change"]["S"]),
        int(item["changes"]["N"]),
        bool(item.get("applied", {}).get("BOOL", False)),
    )

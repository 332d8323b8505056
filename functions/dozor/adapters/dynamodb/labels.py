"""DynamoDB: the Labels table, and the label-based counters of the Features table.

A label item is keyed by what it names and ``<reported_at>#<kind>``, so a redelivered message
finds its own item. A marker item per order and verdict (``COUNTED#fraud``) makes sure a
chargeback followed by a fraud confirmation counts the order once. Label, marker and counter
updates go in one TransactWriteItems.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dozor.adapters.aws_errors import DYNAMODB, translated
from dozor.adapters.dynamodb.codec import number, update_request
from dozor.domain.aggregates import ContainerUpdate, Entity
from dozor.domain.errors import ConflictError
from dozor.domain.feedback import Feedback
from dozor.domain.fraud.labels import Recorded

LABEL_RETENTION = timedelta(days=730)
COUNTED_MARKER = "COUNTED#"  # label_id prefix of the once-per-order-and-verdict markers


class DynamoLabelStore:
    """Implements `dozor.domain.fraud.labels.LabelStore` on the Labels, Decisions and Features tables."""

    def __init__(self, client: Any, labels_table: str, decisions_table: str, features_table: str) -> None:
        self._client = client
        self._labels = labels_table
        self._decisions = decisions_table
        self._features = features_table

    def entities_of(self, order_id: str) -> list[Entity] | None:
        with translated(DYNAMODB, f"entities of order {order_id} not read"):
            response = self._client.get_item(
                TableName=self._decisions,
                Key={"order_id": {"S": order_id}},
                ProjectionExpression="entity_keys",
            )
        stored = response.get("Item")
        if stored is None:
            return None
        pks = [value["S"] for value in stored.get("entity_keys", {}).get("L", [])]
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
            with translated(DYNAMODB, f"feedback for {subject} not stored"):
                self._client.transact_write_items(TransactItems=items)
            return Recorded.COUNTED
        except ConflictError as error:
            if 0 in error.failed_items:
                return Recorded.DUPLICATE
        # Only the marker stood in the way: the order was counted by an earlier label.
        return Recorded.ALREADY_COUNTED if self._put_label(label) else Recorded.DUPLICATE

    def _label_item(self, subject: str, feedback: Feedback) -> dict[str, Any]:
        stored: dict[str, Any] = {
            "subject": {"S": subject},
            "label_id": {"S": f"{feedback.reported_at.isoformat()}#{feedback.kind.value}"},
            "kind": {"S": feedback.kind.value},
            "reported_at": {"S": feedback.reported_at.isoformat()},
            "expires_at": number(int((feedback.reported_at + LABEL_RETENTION).timestamp())),
        }
        if feedback.order_id:
            stored["order_id"] = {"S": feedback.order_id}
        if feedback.parcel_id:
            stored["parcel_id"] = {"S": feedback.parcel_id}
        return {
            "Put": {
                "TableName": self._labels,
                "Item": stored,
                "ConditionExpression": "attribute_not_exists(label_id)",
            }
        }

    def _put_label(self, label: dict[str, Any]) -> bool:
        """Put a label item on its own; False if it was there already."""
        try:
            with translated(DYNAMODB, "label not stored"):
                self._client.put_item(**label["Put"])
            return True
        except ConflictError:
            return False

"""DynamoDB: the ReviewCases table, one item per order sent to manual review.

Open cases carry ``open_queue`` ("open"), so the sparse OpenReviewsIndex lists what reviewers
still have to look at, oldest first; a verdict removes it. The verdict is written before the
Feedback it sends, with ``feedback_pending`` set: while it is set (the send failed, or its answer
was lost), any retry of the same verdict (by anyone: the first reviewer may be gone, and the
verdict is the case's, not the person's) passes the condition again and re-sends it, with who,
when and why kept as first stored, so the Feedback's `reported_at` is the first one and the
labels see the same Feedback again rather than a second, later one. Any other verdict on a
settled case is a conflict. Reviews are a few percent of orders, so one index partition is plenty.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from dozor.adapters.aws_errors import DYNAMODB, translated
from dozor.adapters.dynamodb.codec import number
from dozor.domain.errors import ConflictError, NotFoundError
from dozor.domain.fraud.reviews import CaseState, ReviewCase, Verdict

OPEN_REVIEWS_INDEX = "OpenReviewsIndex"
OPEN = "open"
CASE_RETENTION = timedelta(days=400)  # as long as the decision it is about


class DynamoReviewCases:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def open(self, case: ReviewCase) -> bool:
        """Open a case for the order; False when it was opened before (a redelivered message)."""
        item = {
            "order_id": {"S": case.order_id},
            "case": {"S": case.model_dump_json()},
            "state": {"S": case.state.value},
            "open_queue": {"S": OPEN},
            "queued_at": {"S": case.queued_at.isoformat()},
            "expires_at": number(int((case.queued_at + CASE_RETENTION).timestamp())),
        }
        try:
            with translated(DYNAMODB, f"review case {case.order_id} not opened"):
                self._client.put_item(
                    TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(order_id)"
                )
        except ConflictError:
            return False
        return True

    def open_cases(self, limit: int) -> list[ReviewCase]:
        """The open cases, oldest first (the order reviewers work through them)."""
        with translated(DYNAMODB, "open review cases not read"):
            response = self._client.query(
                TableName=self._table,
                IndexName=OPEN_REVIEWS_INDEX,
                KeyConditionExpression="open_queue = :open",
                ExpressionAttributeValues={":open": {"S": OPEN}},
                ScanIndexForward=True,
                Limit=limit,
            )
        return [_case(item) for item in response.get("Items", [])]

    def get(self, order_id: str) -> ReviewCase | None:
        with translated(DYNAMODB, f"review case {order_id} not read"):
            item = self._client.get_item(
                TableName=self._table, Key={"order_id": {"S": order_id}}, ConsistentRead=True
            ).get("Item")
        return _case(item) if item else None

    def settle(self, order_id: str, verdict: Verdict, by: str, note: str | None, at: datetime) -> ReviewCase:
        """Record the verdict (feedback still to send); the settled case, as first stored.

        A retry of the same verdict while its Feedback is pending keeps the first reviewer, time
        and note (`if_not_exists`): the caller re-sends the Feedback with the stored time.
        """
        values: dict[str, Any] = {
            ":state": {"S": CaseState(verdict.value).value},
            ":open": {"S": CaseState.OPEN.value},
            ":by": {"S": by},
            ":at": {"S": at.isoformat()},
            ":true": {"BOOL": True},
        }
        sets = (
            "#s = :state, verdict_by = if_not_exists(verdict_by, :by), "
            "verdict_at = if_not_exists(verdict_at, :at), feedback_pending = :true"
        )
        if note:
            values[":note"] = {"S": note}
            sets += ", #note = if_not_exists(#note, :note)"
        try:
            with translated(DYNAMODB, f"verdict on {order_id} not stored"):
                response = self._client.update_item(
                    TableName=self._table,
                    Key={"order_id": {"S": order_id}},
                    UpdateExpression=f"SET {sets} REMOVE open_queue",
                    ConditionExpression="#s = :open OR (#s = :state AND attribute_exists(feedback_pending))",
                    ExpressionAttributeNames={"#s": "state", **({"#note": "note"} if note else {})},
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
        except ConflictError as error:
            settled = self.get(order_id)
            if settled is None:
                raise NotFoundError(f"no review case for order {order_id}") from error
            raise ConflictError(
                f"order {order_id} was already settled as {settled.state.value} by {settled.verdict_by}"
            ) from error
        return _case(response["Attributes"])

    def feedback_sent(self, order_id: str) -> None:
        with translated(DYNAMODB, f"verdict on {order_id} not marked sent"):
            self._client.update_item(
                TableName=self._table,
                Key={"order_id": {"S": order_id}},
                UpdateExpression="REMOVE feedback_pending",
            )


def _case(item: dict[str, Any]) -> ReviewCase:
    case = ReviewCase.model_validate_json(item["case"]["S"])
    verdict_at = item.get("verdict_at", {}).get("S")
    return case.model_copy(
        update={
            "state": CaseState(item["state"]["S"]),
            "verdict_by": item.get("verdict_by", {}).get("S"),
            "verdict_at": datetime.fromisoformat(verdict_at) if verdict_at else None,
            "note": item.get("note", {}).get("S"),
        }
    )

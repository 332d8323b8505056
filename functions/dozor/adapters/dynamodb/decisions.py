"""DynamoDB: the Features table (aggregate containers) and the Decisions table, for scoring.

One BatchGetItem reads both tables for an order; one TransactWriteItems stores the decision
(conditional on its absence) together with the order's counter updates, so a replay can never
count an order twice. The decision item also keeps the order's fingerprint (replays with other
contents are refused) and its outbox: the duties (review, event) not yet done. Every failure
leaves as a domain error (`dozor.adapters.aws_errors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from dozor.adapters.aws_errors import DYNAMODB, translated
from dozor.adapters.dynamodb.codec import chunked_batch_get, item, minimums_settled, number, update_request
from dozor.domain.aggregates import Key
from dozor.domain.contracts import Decision
from dozor.domain.errors import AlreadyDecidedError, ConflictError
from dozor.domain.fraud.scoring import PendingCommit, PriorDecision

DECISION_RETENTION = timedelta(days=400)


class DynamoDecisionStore:
    """Implements `dozor.domain.fraud.scoring.DecisionStore` on two DynamoDB tables."""

    def __init__(self, client: Any, features_table: str, decisions_table: str) -> None:
        self._client = client
        self._features = features_table
        self._decisions = decisions_table

    def load(
        self, order_ids: Sequence[str], keys: Iterable[Key]
    ) -> tuple[dict[str, PriorDecision], dict[Key, dict[str, object]]]:
        requests: list[tuple[str, dict[str, Any]]] = [
            (self._decisions, {"order_id": {"S": oid}}) for oid in dict.fromkeys(order_ids)
        ]
        requests += [(self._features, {"pk": {"S": pk}, "sk": {"S": sk}}) for pk, sk in keys]
        decisions: dict[str, PriorDecision] = {}
        containers: dict[Key, dict[str, object]] = {}
        for table, raw in chunked_batch_get(self._client, requests, "features and decisions not read"):
            if table == self._decisions:
                decisions[raw["order_id"]["S"]] = _prior(raw)
            else:
                containers[(raw["pk"]["S"], raw["sk"]["S"])] = item(raw)
        return decisions, containers

    def commit(self, pending: PendingCommit) -> None:
        """Store the decision, with the order as given (the domain has hashed its personal data)."""
        decision, updates, order = pending.decision, pending.updates, pending.order
        expires = int((decision.decided_at + DECISION_RETENTION).timestamp())
        stored: dict[str, Any] = {
            "order_id": {"S": decision.order_id},
            "decision": {"S": decision.model_dump_json()},
            "kind": {"S": decision.decision.value},
            "score": number(decision.score),
            "model_version": {"S": decision.model_version},
            "decided_at": {"S": decision.decided_at.isoformat()},
            "expires_at": number(expires),
            # The feedback function counts a later chargeback or loss against these entities.
            "entity_keys": {"L": [{"S": pk} for pk in sorted({u.key[0] for u in updates})]},
        }
        if order is not None:
            stored["order"] = {"S": order.model_dump_json(exclude_none=True)}
        if pending.fingerprint:
            stored["fingerprint"] = {"S": pending.fingerprint}
        if pending.outbox:
            stored["outbox"] = {"SS": sorted(pending.outbox)}
        put = {
            "Put": {
                "TableName": self._decisions,
                "Item": stored,
                "ConditionExpression": "attribute_not_exists(order_id)",
            }
        }
        # Each retry drops at least one minimum another order already undercut (see update_request).
        for _ in range(len(updates) + 1):
            items = [put] + [{"Update": update_request(self._features, u)} for u in updates]
            try:
                with translated(DYNAMODB, f"decision for {decision.order_id} not stored"):
                    self._client.transact_write_items(TransactItems=items)
                return
            except ConflictError as error:
                if 0 in error.failed_items:  # the decision's own condition: it was stored before
                    raise AlreadyDecidedError(decision.order_id) from error
                settled = minimums_settled(updates, (i - 1 for i in error.failed_items))
                if settled is None:
                    raise
                updates = settled

    def set_list_status(self, pk: str, status: str | None) -> None:
        """Put an entity on the allow/block/review list (``None`` takes it off); for ops tooling."""
        key = {"pk": {"S": pk}, "sk": {"S": "P"}}
        with translated(DYNAMODB, f"list status of {pk} not set"):
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
        prior = self.get_prior(order_id)
        return prior.decision if prior is not None else None

    def get_prior(self, order_id: str) -> PriorDecision | None:
        with translated(DYNAMODB, f"decision for {order_id} not read"):
            response = self._client.get_item(
                TableName=self._decisions, Key={"order_id": {"S": order_id}}, ConsistentRead=True
            )
        stored = response.get("Item")
        return _prior(stored) if stored else None

    def clear_outbox(self, order_id: str, entries: frozenset[str]) -> None:
        """Strike duties done off the decision's outbox (deleting absent members is a no-op)."""
        if not entries:
            return
        with translated(DYNAMODB, f"outbox of {order_id} not cleared"):
            self._client.update_item(
                TableName=self._decisions,
                Key={"order_id": {"S": order_id}},
                UpdateExpression="DELETE outbox :done",
                ExpressionAttributeValues={":done": {"SS": sorted(entries)}},
            )


def _prior(raw: dict[str, Any]) -> PriorDecision:
    return PriorDecision(
        Decision.model_validate_json(raw["decision"]["S"]),
        raw.get("fingerprint", {}).get("S"),
        frozenset(raw.get("outbox", {}).get("SS", [])),
    )

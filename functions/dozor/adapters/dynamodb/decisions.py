"""DynamoDB: the Features table (one item per entity) and the Decisions table, for scoring.

One BatchGetItem reads both tables for an order. A new decision is then stored in two steps,
not one transaction (a transaction bills every item twice and makes a top seller's orders
collide; see `dozor.domain.aggregates`):

1. a PutItem of the decision, conditional on its absence, so an order is decided once. Its
   outbox (the duties not yet done: review, event) carries one more, ``count``: the counter
   updates, not yet known to be applied. It also records which writer applies them;
2. one UpdateItem per entity, each *idempotent*: it sets the writer's slot on the item
   (``~<writer>``) to the order's marker, on condition that the slot does not hold it already.
   A writer (one per function container) applies its orders one after another, so its slot on
   an item names the last order it counted there. A retry, a redelivery or another container
   finishing the order writes under the *same* slot, so a counter already applied is refused
   by its condition and counted nowhere twice.

Checkout's budget is checked before each of these writes, not once for all of them (``fits``:
one more call and a hand-off after it still fit): after the put, the counting stops before an
update that no longer fits, the writer takes a new name as after a failure, and the rest goes
to the pending queue (`StoreUnavailableError`, which `OrderScoring` hands off); the drain then
applies what is left under the old name's slots, the rest refused by their conditions.

``count`` leaves the outbox with the first duty struck off after the counters are all applied
(the decision event, usually: no extra write); if the duties went to the pending queue, before
this writer writes anything else. Whoever then finds a stored decision with ``count`` left (a
replay of the order, the pending-commits function, the retry inside the budget) applies the
counters again under the recorded writer's slot, where the conditions let through exactly those
not applied yet. That is safe once the recorded writer can no longer write under that name:
it failed and took a new name (a writer that fails halfway does, so its old slots keep saying
what it had applied), or it is done or dead, which every function's timeout guarantees after
`REPAIR_GRACE`; a younger decision of another writer is left to it (the pending-commits record
is refused as unavailable, and its queue brings it back after the grace). A writer that hands an
order on lists in the pending commit the names it retired lately (`PendingCommit.retired_writers`:
the order may be stored under any attempt's), so the pending-commits function finishes that
count at once rather than after the grace; one that counted everything and hands on only the
duties says so (`PendingCommit.counted`), and the function strikes ``count`` itself. Slots
older than `SLOT_HOURS` are removed by the next write that reads them; a repair later than
`REPAIR_HORIZON` (past every SQS redelivery of the order) leaves the counters as they are. What
is not repaired: a checkout invocation killed between the decision and its last update whose
client never retries the order leaves its counters partly applied (logged by the platform as a
timeout; the decision itself is stored).

The decision item also keeps the order's fingerprint (replays with other contents are refused)
and the entity items it was counted in. Every failure leaves as a domain error
(`dozor.adapters.aws_errors`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import random
import secrets
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from dozor.adapters.aws_errors import DYNAMODB, held_by_a_transaction, translated
from dozor.adapters.dynamodb.codec import chunked_batch_get, item, number, update_request
from dozor.domain import aggregates as agg
from dozor.domain.aggregates import ContainerUpdate, Key
from dozor.domain.contracts import Decision, Order
from dozor.domain.errors import AlreadyDecidedError, ConflictError, StoreUnavailableError
from dozor.domain.fraud import features
from dozor.domain.fraud.scoring import PendingCommit, PriorDecision

DECISION_RETENTION = timedelta(days=400)
COUNT = "count"  # the outbox duty this store owns: the order's counter updates
SLOT = "~"  # attribute prefix of the writers' idempotency slots on entity items
SLOT_HOURS = 1  # a slot is removed once its order was decided this many hours before a write
REPAIR_HORIZON = timedelta(minutes=45)  # under SLOT_HOURS: a slot outlives every repair that reads it
# Over every function's timeout (a writer still counting is done or dead by then), under the
# queues' visibility timeout (a redelivery comes after it)
REPAIR_GRACE = timedelta(minutes=2)
MAX_REMOVED = 40
CONFLICT_RETRIES = 3  # stale attributes removed per write at most (an expression is limited to 4 KB)
_REMEMBERED = 10_000


def _marker(order_id: str, decided_epoch: float) -> str:
    """What a writer's slot says once it counted an order: the decision's hour (four base-36
    digits until 2161), then 48 bits of the order id's hash. Short: every byte is billed."""
    digest = base64.urlsafe_b64encode(hashlib.blake2b(order_id.encode(), digest_size=6).digest()).decode()
    return agg.b36(int(decided_epoch) // 3600) + digest


class DynamoDecisionStore:
    """Implements `dozor.domain.fraud.scoring.DecisionStore` on two DynamoDB tables."""

    def __init__(self, client: Any, features_table: str, decisions_table: str) -> None:
        self._client = client
        self._features = features_table
        self._decisions = decisions_table
        self._former: set[str] = set()  # this store's names before a failure: its own to repair
        # The last few of them: a hand-off names these, as the order may be stored under any of
        # its attempts' names (a container serves one invocation at a time; a budget allows a
        # handful of attempts)
        self._recently_retired: deque[str] = deque(maxlen=8)
        self.writer = ""
        self._rename()
        self._loaded: dict[Key, dict[str, object]] = {}  # the last read's items, to prune on write
        self._counted: OrderedDict[str, None] = OrderedDict()  # counters applied, ``count`` not struck

    def _rename(self) -> None:
        """A new writer name, and the shard of the hot entities it writes to."""
        if self.writer:
            self._former.add(self.writer)
            self._recently_retired.append(self.writer)
        self.writer = secrets.token_urlsafe(4)[:5]  # 30 bits: unique among an item's writers
        self.shard = zlib.crc32(self.writer.encode())

    def load(
        self, order_ids: Sequence[str], keys: Iterable[Key], fits: Callable[[], bool] | None = None
    ) -> tuple[dict[str, PriorDecision], dict[Key, dict[str, object]]]:
        requests: list[tuple[str, dict[str, Any]]] = [
            (self._decisions, {"order_id": {"S": oid}}) for oid in dict.fromkeys(order_ids)
        ]
        requests += [(self._features, {"pk": {"S": pk}, "sk": {"S": sk}}) for pk, sk in keys]
        decisions: dict[str, PriorDecision] = {}
        containers: dict[Key, dict[str, object]] = {}
        for table, raw in chunked_batch_get(self._client, requests, "features and decisions not read"):
            if table == self._decisions:
                if COUNT in raw.get("outbox", {}).get("SS", ()):
                    self._finish_counting_on_read(raw, fits)
                decisions[raw["order_id"]["S"]] = _prior(raw)
            else:
                containers[(raw["pk"]["S"], raw["sk"]["S"])] = item(raw)
        self._loaded = containers
        return decisions, containers

    def commit(self, pending: PendingCommit, fits: Callable[[], bool] | None = None) -> None:
        """Store the decision, with the order as given (the domain has hashed its personal data),
        then count it (see the module docstring). ``fits``: whether one more call still fits
        checkout's budget, asked before each write after the first; `StoreUnavailableError`
        when it says no (the decision stored, its counting left to a repair)."""
        decision = pending.decision
        updates = [replace(u, key=agg.shard_key(u.key, self.shard)) for u in pending.updates]
        stored = self._decision_item(pending, updates)
        self._strike_owed()
        try:
            self._put_decision(stored, fits, pending.retired_writers, pending.counted)
            at = pending.order.created_at if pending.order is not None else decision.decided_at
            marker = _marker(decision.order_id, decision.decided_at.timestamp())
            self._count(self.writer, marker, updates, int(at.timestamp()), fits)
        except AlreadyDecidedError:
            raise
        except BaseException as error:
            # Anything that stops the count halfway and leaves the process alive (a store error,
            # or an interruption: a cancelled task, a test's simulated timeout) must retire this
            # name: its slots must keep saying what it had counted, or a later count under the same
            # name would hide this one's gaps from the repair. Re-raised, so nothing is swallowed.
            self._rename()
            if not isinstance(error, StoreUnavailableError):
                raise
            # A hand-off: it names the writers retired lately, so that whoever applies it finishes
            # at once. Also when the put itself failed: it may have landed (a timeout after
            # DynamoDB took it) under this name or an earlier attempt's.
            names = tuple(dict.fromkeys((*error.retired_writers, *self._recently_retired)))
            raise StoreUnavailableError(str(error), retired_writers=names) from error
        if updates:
            # Struck off with the first duty done, or (no time left) before this writer's next write
            if pending.outbox or (fits is not None and not fits()):
                self._counted[decision.order_id] = None
                while len(self._counted) > _REMEMBERED:
                    self._counted.popitem(last=False)
            else:
                self._strike(decision.order_id, {COUNT})

    def _decision_item(self, pending: PendingCommit, updates: list[ContainerUpdate]) -> dict[str, Any]:
        decision, order = pending.decision, pending.order
        expires = int((decision.decided_at + DECISION_RETENTION).timestamp())
        stored: dict[str, Any] = {
            "order_id": {"S": decision.order_id},
            "decision": {"S": decision.model_dump_json()},
            "kind": {"S": decision.decision.value},
            "score": number(decision.score),
            "model_version": {"S": decision.model_version},
            "decided_at": {"S": decision.decided_at.isoformat()},
            "expires_at": number(expires),
            # Where it was counted: the feedback function counts a later chargeback or loss
            # against these items, and a repair finishes the counting in them.
            "entity_keys": {"L": [{"S": pk} for pk in sorted({u.key[0] for u in updates})]},
            "writer": {"S": self.writer},
        }
        if order is not None:
            stored["order"] = {"S": order.model_dump_json(exclude_none=True)}
        if pending.fingerprint:
            stored["fingerprint"] = {"S": pending.fingerprint}
        outbox = set(pending.outbox) | ({COUNT} if updates else set())
        if outbox:
            stored["outbox"] = {"SS": sorted(outbox)}
        return stored

    def _put_decision(
        self,
        stored: dict[str, Any],
        fits: Callable[[], bool] | None = None,
        retired: frozenset[str] = frozenset(),
        counted: bool = False,
    ) -> None:
        order_id = stored["order_id"]["S"]
        try:
            with translated(DYNAMODB, f"decision for {order_id} not stored"):
                self._client.put_item(
                    TableName=self._decisions,
                    Item=stored,
                    ConditionExpression="attribute_not_exists(order_id)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ConflictError as error:
            old = _old_item(error) or self._read_decision(order_id)
            if old is not None and COUNT in old.get("outbox", {}).get("SS", ()):
                if counted:  # its writer applied every update; only the strike is owed
                    self._strike(order_id, {COUNT})
                else:
                    self._finish_counting(old, waiting=True, fits=fits, retired=retired)
            raise AlreadyDecidedError(order_id) from error

    def _count(
        self,
        writer: str,
        marker: str,
        updates: list[ContainerUpdate],
        order_epoch: int,
        fits: Callable[[], bool] | None = None,
    ) -> None:
        """Apply each update once under the writer's slot (a refused condition: counted before),
        each only while ``fits`` says one more call fits checkout's budget. Stopped halfway, it
        names the writer as retired: its own writer takes a new name as the error leaves `commit`,
        and any other it counts for is a former name or past `REPAIR_GRACE`."""
        slot = SLOT + writer
        try:
            for done, update in enumerate(updates):
                if fits is not None and not fits():
                    spent = f"latency budget spent after {done} of {len(updates)} counter updates"
                    raise StoreUnavailableError(f"{spent}: the rest handed on")
                self._count_once(update, (slot, marker), self._stale(update, slot, order_epoch), fits)
        except StoreUnavailableError as error:
            if writer in error.retired_writers:
                raise
            names = (*error.retired_writers, writer)
            raise StoreUnavailableError(str(error), retired_writers=names) from error

    def _stale(self, update: ContainerUpdate, slot: str, order_epoch: int) -> list[str]:
        """What the write of ``update`` may remove: the buckets no order within the late-arrival
        slack of this one reads (as the last read showed them), and slots of long-past orders."""
        found = self._loaded.pop(update.key, None)
        if not found:
            return []
        names = agg.stale_attributes(found, order_epoch // agg.FIVE_MINUTES)
        oldest = agg.b36(int(time.time()) // 3600 - SLOT_HOURS)
        names += [n for n, v in found.items() if n[:1] == SLOT and n != slot and _older(str(v), oldest)]
        written = update.add.keys() | update.add_to_set.keys() | update.set_min.keys()
        return [n for n in names if n not in written][:MAX_REMOVED]

    def _count_once(
        self,
        update: ContainerUpdate,
        guard: tuple[str, str],
        stale: list[str],
        fits: Callable[[], bool] | None = None,
    ) -> None:
        attempt, conflicts = update, 0
        for tries in itertools.count():
            if tries and fits is not None and not fits():  # each retry is a call of its own
                raise StoreUnavailableError(f"latency budget spent retrying the counters of {update.key[0]}")
            request = update_request(self._features, attempt, guard=guard, also_remove=stale)
            try:
                with translated(DYNAMODB, f"counters of {update.key[0]} not updated"):
                    self._client.update_item(**request, ReturnValuesOnConditionCheckFailure="ALL_OLD")
                return
            except ConflictError as error:
                old = _old_item(error) or {}
                if old.get(guard[0], {}).get("S") == guard[1] or not attempt.set_min:
                    return  # counted here before (a retry, or the order's first attempt)
                attempt = replace(attempt, set_min={})  # the store holds an earlier first order
            except StoreUnavailableError as error:
                # The item is in a transaction (a label being counted): DynamoDB asks to retry.
                conflicts += 1
                if not held_by_a_transaction(error) or conflicts > CONFLICT_RETRIES:
                    raise
                time.sleep(random.uniform(0, 0.005 * 2**conflicts))

    def _finish_counting_on_read(self, raw: dict[str, Any], fits: Callable[[], bool] | None) -> None:
        """A read that finds a count owed finishes it; checkout's (``fits``) only while it fits,
        and without failing the read: the decision was found, and every count write is idempotent,
        so what is left is finished by the next reader or the pending commits' drain."""
        if fits is None:
            self._finish_counting(raw)
            return
        if not fits():
            return
        with contextlib.suppress(StoreUnavailableError):
            self._finish_counting(raw, fits=fits)

    def _finish_counting(
        self,
        raw: dict[str, Any],
        *,
        waiting: bool = False,
        fits: Callable[[], bool] | None = None,
        retired: frozenset[str] = frozenset(),
    ) -> None:
        """Apply what a stored decision's counting left undone (see the module docstring).

        Only where no live writer can still be at it: this store's own former names, the names a
        pending commit says were ``retired`` when the order was handed on, or a decision older
        than `REPAIR_GRACE`. A younger one of another writer is left to it (or, when
        ``waiting``, refused as unavailable so that its queue brings it back later).
        """
        order_id, writer = raw["order_id"]["S"], raw.get("writer", {}).get("S", "")
        if order_id in self._counted:  # counted here; only the strike is owed
            self._strike(order_id, {COUNT})
            del self._counted[order_id]
            return
        decided = Decision.model_validate_json(raw["decision"]["S"]).decided_at
        age = time.time() - decided.timestamp()
        own = writer in self._former or writer in retired
        if not own and age < REPAIR_GRACE.total_seconds():
            if waiting:
                raise StoreUnavailableError(f"order {order_id} is still being counted by writer {writer}")
            return
        if "order" in raw and writer and age < REPAIR_HORIZON.total_seconds():
            order = Order.model_validate_json(raw["order"]["S"])
            entities = {}
            for value in raw.get("entity_keys", {}).get("L", []):
                kind, _, name = value["S"].partition("#")
                entities[kind] = agg.Entity(kind, name)
            marker = _marker(order_id, decided.timestamp())
            updates = features.updates(order, entities)
            self._count(writer, marker, updates, int(order.created_at.timestamp()), fits)
        if fits is not None and not fits():  # the drain of the hand-off strikes it, at once:
            # the count is done under a name nobody counts under any more (a former one of this
            # store's, or one past the grace)
            spent = f"latency budget spent before the count of {order_id} was struck off"
            raise StoreUnavailableError(spent, retired_writers=(writer,))
        self._strike(order_id, {COUNT})

    def _strike_owed(self) -> None:
        """Strike ``count`` off the decisions this writer counted whose duties went elsewhere
        (handed to the pending queue): before it writes anything more under its name, so no
        repair can ever find a count owed by a live writer that has moved on."""
        for order_id in list(self._counted):
            self._strike(order_id, {COUNT})
            del self._counted[order_id]

    def _strike(self, order_id: str, entries: set[str]) -> None:
        with translated(DYNAMODB, f"outbox of {order_id} not cleared"):
            self._client.update_item(
                TableName=self._decisions,
                Key={"order_id": {"S": order_id}},
                UpdateExpression="DELETE outbox :done",
                ExpressionAttributeValues={":done": {"SS": sorted(entries)}},
            )

    def _read_decision(self, order_id: str) -> dict[str, Any] | None:
        with translated(DYNAMODB, f"decision for {order_id} not read"):
            response = self._client.get_item(
                TableName=self._decisions, Key={"order_id": {"S": order_id}}, ConsistentRead=True
            )
        found: dict[str, Any] | None = response.get("Item")
        return found

    def set_list_status(self, pk: str, status: str | None, change: int | None = None) -> None:
        """Put an entity on the allow/block/review list (``None`` takes it off); for ops tooling.

        With ``change`` (the list change's number, `ListKeeper`), only if no later change landed
        first: two changes applied concurrently cannot leave the older one on the profile
        (ConflictError when a later one is there).
        """
        names = {"#l": "list"}
        values: dict[str, Any] = {} if status is None else {":s": {"S": status}}
        sets = [] if status is None else ["#l = :s"]
        ordered: dict[str, Any] = {}
        if change is not None:
            names["#c"] = "list_change"
            values[":c"] = {"N": str(change)}
            sets.append("#c = :c")
            ordered["ConditionExpression"] = "attribute_not_exists(#c) OR #c < :c"
        parts = [f"SET {', '.join(sets)}"] if sets else []
        if status is None:
            parts.append("REMOVE #l")
        if values:
            ordered["ExpressionAttributeValues"] = values
        with translated(DYNAMODB, f"list status of {pk} not set"):
            self._client.update_item(
                TableName=self._features,
                Key={"pk": {"S": pk}, "sk": {"S": "P"}},
                UpdateExpression=" ".join(parts),
                ExpressionAttributeNames=names,
                **ordered,
            )

    def get_decision(self, order_id: str) -> Decision | None:
        prior = self.get_prior(order_id)
        return prior.decision if prior is not None else None

    def get_prior(self, order_id: str) -> PriorDecision | None:
        stored = self._read_decision(order_id)
        return _prior(stored) if stored else None

    def clear_outbox(self, order_id: str, entries: frozenset[str]) -> None:
        """Strike duties done off the decision's outbox (deleting absent members is a no-op)."""
        if not entries:
            return
        counted = order_id in self._counted
        self._strike(order_id, set(entries) | ({COUNT} if counted else set()))
        if counted:
            del self._counted[order_id]


def _prior(raw: dict[str, Any]) -> PriorDecision:
    return PriorDecision(
        Decision.model_validate_json(raw["decision"]["S"]),
        raw.get("fingerprint", {}).get("S"),
        frozenset(raw.get("outbox", {}).get("SS", [])) - {COUNT},  # the store's own duty
    )


def _old_item(error: ConflictError) -> dict[str, Any] | None:
    """The item a refused conditional write found (asked for with ReturnValuesOnConditionCheckFailure)."""
    cause = error.__cause__
    response = getattr(cause, "response", None) or {}
    found: dict[str, Any] | None = response.get("Item")
    return found


def _older(marker: str, oldest_hour: str) -> bool:
    return marker[: len(oldest_hour)] < oldest_hour  # fixed-width base-36 hours sort as text

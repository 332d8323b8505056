"""Workarounds for moto behaviour that makes a realistic local run impractically slow.

moto backs up a whole table (``copy.deepcopy``) for every operation of a TransactWriteItems call,
so that it can roll back on failure. With Dozor's ~30 operations per scored order and a Features
table of tens of thousands of items, a single transaction ends up copying millions of items: a
14-day demo never finishes. The rollback only ever needs the partitions the transaction touches,
so while a transaction runs, a table's deep copy shares every other partition and copies just
those (once per table per transaction). Rollback semantics are unchanged.

moto's server handles each request in its own thread, but its DynamoDB backend is not thread-safe:
two functions writing at once (the API and the order-queue consumer) make one transaction's
rollback copy iterate a partition the other is changing ("dictionary changed size during
iteration"). DynamoDB requests are therefore serialised, which is also the isolation a
transaction has on AWS. SQS and SNS stay concurrent (a long poll must not block a send).
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from contextvars import ContextVar
from typing import Any

_touched: ContextVar[dict[str, set[Any]] | None] = ContextVar("dozor_touched_partitions", default=None)
_clones: ContextVar[dict[str, Any] | None] = ContextVar("dozor_table_clones", default=None)
_installed = False
_dynamodb_lock = threading.RLock()


def install() -> None:
    """Patch moto's DynamoDB backend once per process (idempotent)."""
    global _installed  # noqa: PLW0603 - a process-wide, one-time patch
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415 - moto is imported only when a stack is used
    from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415
    from moto.dynamodb.models.table import Table  # noqa: PLC0415
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415

    original_call_action = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _dynamodb_lock:
            return original_call_action(self)

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        touched: dict[str, set[Any]] = {}
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            key = op.get("Key") or op.get("Item") or {}
            if table is not None and table.hash_key_attr in key:
                touched.setdefault(table.name, set()).add(DynamoType(key[table.hash_key_attr]))
        tokens = (_touched.set(touched), _clones.set({}))
        try:
            return original(self, transact_items)
        finally:
            _touched.reset(tokens[0])
            _clones.reset(tokens[1])

    def table_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        touched, clones = _touched.get(), _clones.get()
        if touched is None or clones is None or self.name not in touched:
            clone = self.__class__.__new__(self.__class__)
            memo[id(self)] = clone
            for name, value in self.__dict__.items():
                setattr(clone, name, copy.deepcopy(value, memo))
            return clone
        if self.name not in clones:
            clone = copy.copy(self)
            clone.items = defaultdict(dict, self.items)
            for partition in touched[self.name]:
                if partition in self.items:
                    clone.items[partition] = copy.deepcopy(self.items[partition], memo)
            clones[self.name] = clone
        return clones[self.name]

    setattr(DynamoDBBackend, "transact_write_items", transact_write_items)  # noqa: B010 - a monkeypatch
    setattr(Table, "__deepcopy__", table_deepcopy)  # noqa: B010
    setattr(DynamoHandler, "call_action", call_action)  # noqa: B010
    _installed = True

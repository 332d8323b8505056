"""Workarounds for moto behaviour that makes a realistic local run impractically slow.

(The patches to how moto parses and validates DynamoDB's update and condition expressions are
in `moto_expressions`, those to what its server spends on every request, whatever the service,
in `moto_requests`; `install` puts all of them on.)

Each patch changes how fast moto's DynamoDB answers, never what it answers:
`tests/integration/local/test_moto_quirks.py` runs the same operations on moto with and without
each patch and compares every response and the tables left behind. What the profile of a scored
order and of the parcel sweeper showed, and what each patch does about it:

- ``partition_backups``: moto backs up a whole table (``copy.deepcopy``) for every operation of a
  TransactWriteItems call, so that it can roll back on failure; with a Features table of tens of
  thousands of items a single transaction copied millions of items. The rollback only ever needs
  the partitions the transaction touches, so while a transaction runs, a table's deep copy shares
  every other partition and copies just those (once per table per transaction).
- ``serialised_requests``: moto's server handles each request in its own thread, but its DynamoDB
  backend is not thread-safe: two functions writing at once make one transaction's rollback copy
  iterate a partition the other is changing ("dictionary changed size during iteration").
  DynamoDB requests are therefore serialised, which is also the isolation a transaction has on
  AWS. SQS and SNS stay concurrent (a long poll must not block a send).
- ``dispatch_method_names``: moto's request dispatch lists its handler class's methods with
  ``inspect.getmembers`` on every request of every service (about 1 ms each); the list is kept
  per class.
- ``light_errors``: applying ``ADD`` to an attribute the item does not have yet goes through an
  exception inside moto (ProvidedKeyDoesNotExist, caught again), and every DynamoDB exception
  renders an XML error body (xmltodict) that its JSON base class replaces at once: a counter
  update paid for several. The JSON body is set directly, the exception is otherwise the same.
- ``partition_queries``: moto answers every Query by sorting the whole table and then testing each
  item against the key condition; on a GSI too. The sweeper's 16 due-index queries an hour made
  that the cost of a demo's parcels. The items whose partition key matches are now found first
  (the base table's partition directly; for an index, the items grouped by its partition key in
  one pass, then regrouped by the items each write names, and grouped afresh after any other
  write) and sorted the same way, so moto filters, pages and projects the same list in the same
  order.
"""

from __future__ import annotations

import copy
import inspect
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from dozor_local import moto_expressions, moto_requests

_touched: ContextVar[dict[str, set[Any]] | None] = ContextVar("dozor_touched_partitions", default=None)
_clones: ContextVar[dict[str, Any] | None] = ContextVar("dozor_table_clones", default=None)
_dynamodb_lock = threading.RLock()
_MISSING = object()


class _Swaps:
    """Attributes replaced on moto's classes, so that a patch can be taken off again (tests)."""

    def __init__(self) -> None:
        self.replaced: list[tuple[Any, str, Any]] = []

    def set(self, owner: Any, name: str, value: Any) -> None:
        self.replaced.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, value)

    def undo(self) -> None:
        for owner, name, previous in reversed(self.replaced):
            if previous is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, previous)
        self.replaced.clear()


# --- partition_backups -----------------------------------------------------------------------------


def _partition_backups(swaps: _Swaps) -> None:
    from moto.dynamodb.models import DynamoDBBackend  # noqa: PLC0415 - moto is imported only when a stack is used
    from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415
    from moto.dynamodb.models.table import Table  # noqa: PLC0415

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

    swaps.set(DynamoDBBackend, "transact_write_items", transact_write_items)
    swaps.set(Table, "__deepcopy__", table_deepcopy)


# --- serialised_requests ---------------------------------------------------------------------------


def _serialised_requests(swaps: _Swaps) -> None:
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415

    original_call_action = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _dynamodb_lock:
            return original_call_action(self)

    swaps.set(DynamoHandler, "call_action", call_action)


# --- dispatch_method_names -------------------------------------------------------------------------

_method_names: dict[type, list[str]] = {}


def _dispatch_method_names(swaps: _Swaps) -> None:
    from moto.core import responses  # noqa: PLC0415

    names_of = responses.__dict__["method_names_from_class"]

    def method_names_from_class(clazz: Any) -> list[str]:
        # Every request asked inspect.getmembers for its handler class's methods (a thousand-odd
        # members); a class's methods do not change while a server runs.
        found = _method_names.get(clazz)
        if found is None:
            found = _method_names[clazz] = names_of(clazz)
        return list(found)

    swaps.set(responses, "method_names_from_class", method_names_from_class)
    _method_names.clear()


# --- light_errors ----------------------------------------------------------------------------------


def _light_errors(swaps: _Swaps) -> None:
    from moto.dynamodb.exceptions import DynamodbException  # noqa: PLC0415
    from werkzeug.exceptions import HTTPException  # noqa: PLC0415

    def init(self: Any, error_type: str, message: str, _: str = "", **kwargs: Any) -> None:
        # What _RESTError.__init__ and then JsonRESTError.__init__ leave behind, without the XML
        # body the first renders (xmltodict) and the second replaces with JSON straight away.
        HTTPException.__init__(self)
        self.error_type = error_type
        self.message = message
        self.description = json.dumps({"__type": error_type, "message": message})
        self.content_type = "application/json"

    swaps.set(DynamodbException, "__init__", init)


# --- partition_queries -----------------------------------------------------------------------------


# Requests that never change an item. A write that names its items (`_written`) marks them for
# regrouping; any other request starts a new generation, and every index is grouped afresh.
_READS = frozenset(
    {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable", "ListTables"}
    | {"DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource", "DescribeEndpoints"}
)
_generation = [0]


_MOST_WRITTEN = 10_000  # writes kept for a grouping not queried since; past that it is made afresh


class _Grouping:
    """A table's items grouped by an index's partition key values, kept in step with the writes
    (Table.query skips whatever is not an Item, so these are Items only)."""

    def __init__(self, table: Any, names: tuple[str, ...]) -> None:
        from moto.dynamodb.models.dynamo_type import Item  # noqa: PLC0415

        self.table, self.names, self.generation = table, names, _generation[0]
        self.groups: dict[tuple[Any, ...], dict[Any, Any]] = defaultdict(dict)  # key values -> items
        self.where: dict[Any, tuple[Any, ...]] = {}  # item key -> its key values
        self.written: list[dict[str, Any]] = []  # items (or keys) written since, as requests named them
        for item in _items(table):
            if isinstance(item, Item):
                self._place(item, (item.hash_key, item.range_key))

    def _place(self, item: Any, key: Any) -> None:
        values = tuple(_key_value(item.attrs.get(name)) for name in self.names)
        self.groups[values][key] = item
        self.where[key] = values

    def note(self, named: list[dict[str, Any]]) -> None:
        if self.generation == _generation[0]:  # (an outdated grouping is made afresh anyway)
            self.written += named
            if len(self.written) > _MOST_WRITTEN:
                self.generation, self.written = -1, []

    def catch_up(self) -> None:
        """Regroup each item written since: where it is now, or nowhere if it is gone."""
        from moto.dynamodb.models.dynamo_type import DynamoType, Item  # noqa: PLC0415

        table, written, self.written = self.table, self.written, []
        for named in written:
            hash_key = DynamoType(named[table.hash_key_attr])
            range_key = DynamoType(named[table.range_key_attr]) if table.range_key_attr else None
            key = (hash_key, range_key)
            was = self.where.pop(key, None)
            if was is not None:
                self.groups[was].pop(key, None)
            partition = table.items.get(hash_key)
            item = partition.get(range_key) if table.range_key_attr and partition is not None else partition
            if isinstance(item, Item):
                self._place(item, key)


# (id(table), index key attributes) -> the table's items grouped by those attributes' values
_grouped: dict[tuple[int, tuple[str, ...]], _Grouping] = {}


def _written(action: str | None, body: Any) -> dict[str, list[dict[str, Any]]] | None:
    """The items a write request names (its items, or their keys) per table; None when it may
    change items it does not name (or names them in a way not read here)."""
    try:
        if action == "PutItem":
            return {body["TableName"]: [body["Item"]]}
        if action in ("UpdateItem", "DeleteItem"):
            return {body["TableName"]: [body["Key"]]}
        named: dict[str, list[dict[str, Any]]] = defaultdict(list)
        if action == "BatchWriteItem":
            for table, requests in body["RequestItems"].items():
                for request in requests:
                    put = request.get("PutRequest")
                    named[table].append(put["Item"] if put else request["DeleteRequest"]["Key"])
            return named
        if action == "TransactWriteItems":
            for entry in body["TransactItems"]:
                ((kind, operation),) = entry.items()
                named[operation["TableName"]].append(operation["Item" if kind == "Put" else "Key"])
            return named
    except (KeyError, TypeError, ValueError, AttributeError):
        pass
    return None


def _partition_queries(swaps: _Swaps) -> None:
    from moto.dynamodb.models.dynamo_type import Item  # noqa: PLC0415
    from moto.dynamodb.models.table import Table  # noqa: PLC0415
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415

    original_query = Table.query
    signature = inspect.signature(original_query)
    original_call_action = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        # Under the DynamoDB lock (see serialised_requests) until the writes are noted: a query
        # must not see a write's items before its grouping knows they moved.
        with _dynamodb_lock:
            try:
                return original_call_action(self)
            finally:
                action = self._get_action()
                if action not in _READS:
                    named = _written(action, self.body)
                    if named is None or any(":" in table for table in named):  # (a table's ARN: unread)
                        _generation[0] += 1
                    else:
                        for grouping in _grouped.values():
                            grouping.note(named.get(grouping.table.name, []))

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, hash_key, *args, **kwargs).arguments
        if arguments.get("index_name"):
            conditions = dict(arguments.get("hash_key_conditions") or [])
            if not conditions:
                return original_query(self, hash_key, *args, **kwargs)
            names = tuple(conditions)
            grouping = _grouped.get((id(self), names))
            fresh = grouping is None or grouping.generation != _generation[0] or grouping.table is not self
            if not fresh:
                try:
                    grouping.catch_up()  # type: ignore[union-attr]
                except (KeyError, TypeError, ValueError, AttributeError):  # a key not read here
                    fresh = True
            if fresh:
                grouping = _grouped[id(self), names] = _Grouping(self, names)
            assert grouping is not None
            wanted = tuple(_key_value(conditions[name]) for name in names)
            if _ODD in wanted:
                pool = list(_items(self))
            else:
                odd = [i for key, items in grouping.groups.items() if _ODD in key for i in items.values()]
                pool = list(grouping.groups.get(wanted, {}).values()) + odd
            candidates = [item for item in pool if _matches(item, conditions)]
        else:
            partition = self.items.get(hash_key) if hash_key is not None else None
            if partition is None:
                candidates = []
            else:
                candidates = list(partition.values()) if self.range_key_attr else [partition]
        candidates = [item for item in candidates if isinstance(item, Item)]
        # The same order Table.all_items gives the whole table; moto takes it from here.
        candidates.sort(key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)
        self.all_items = lambda: candidates
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    swaps.set(Table, "query", query)
    swaps.set(DynamoHandler, "call_action", call_action)


_ODD = ("?",)  # a value not grouped by (type, value): its items are tested against every query


def _key_value(value: Any) -> Any:
    """What DynamoType equality compares (type and cast value), for the scalar key types."""
    if value is None or getattr(value, "type", None) not in {"S", "N", "B"}:
        return _ODD if value is not None else None
    try:
        key = (value.type, value.cast_value)
        hash(key)
    except (TypeError, ValueError, ArithmeticError):
        return _ODD
    return key


def _items(table: Any) -> Iterator[Any]:
    for partition in table.items.values():
        if table.range_key_attr:
            yield from partition.values()
        else:
            yield partition


def _matches(item: Any, conditions: dict[str, Any]) -> bool:
    """The index's partition-key test of Table.query (`not value or value != expected`)."""
    attrs = getattr(item, "attrs", None)
    if attrs is None:
        return True  # not an Item: Table.query skips it itself
    for name, expected in conditions.items():
        value = attrs.get(name)
        if not value or value != expected:
            return False
    return True


# --- installing ------------------------------------------------------------------------------------

PATCHES: dict[str, Callable[[_Swaps], None]] = {
    "partition_backups": _partition_backups,
    "serialised_requests": _serialised_requests,
    "dispatch_method_names": _dispatch_method_names,
    "light_errors": _light_errors,
    "partition_queries": _partition_queries,
    **moto_expressions.PATCHES,
    **moto_requests.PATCHES,  # the server's own per-request costs
}
_applied: dict[str, _Swaps] = {}


def install(names: tuple[str, ...] | None = None) -> None:
    """Patch moto (its DynamoDB backend, its server's dispatch) once per process (idempotent);
    by default with every patch."""
    for name in PATCHES if names is None else names:
        if name not in _applied:
            swaps = _Swaps()
            PATCHES[name](swaps)
            _applied[name] = swaps


def uninstall() -> None:
    """Take every patch off again (tests compare moto with and without them)."""
    for name in reversed(list(_applied)):
        _applied.pop(name).undo()
    _clear_caches()


def _clear_caches() -> None:
    moto_expressions.clear_caches()
    _method_names.clear()
    _grouped.clear()


@contextmanager
def only(*names: str) -> Iterator[None]:
    """Run with just these patches (none: plain moto), then restore the patches installed before."""
    before = tuple(_applied)
    uninstall()
    try:
        install(names)
        yield
    finally:
        uninstall()
        install(before)

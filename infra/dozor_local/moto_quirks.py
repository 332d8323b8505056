"""Workarounds for moto behaviour that makes a realistic local run impractically slow.

(The patches to what moto's server spends on every request, whatever the service, are in
`moto_requests`; `install` puts both on.)

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
- ``update_expression_cache``: moto tokenises and parses every UpdateExpression from its text, twice
  per update inside a transaction (once to validate the request, once to apply it). A service
  sends a handful of distinct expressions, so the parsed tree is kept per text. moto never changes
  a parsed tree (its validator works on a deep copy), so sharing one is safe.
- ``update_expression_validation``: validating an update walks the tree ten times, every node
  tested with ``isinstance`` against abstract base classes (slow: each goes through
  ``ABCMeta.__instancecheck__``), and two of the walks (action counts, overlapping paths) collect
  the clauses below every node again, quadratic in the expression's length. Three patches, same
  walks: node types are looked up once per class, the tree is copied by a copier that knows its
  shape (a cached tree: by unpickling its pickle, which builds what deepcopy builds), and the
  three checks that depend only on the expression, its attribute names and the
  table's keys (not on the item or the values) are skipped for a parsed tree that already passed
  them with the same names and keys. They still run, and raise, the first time.
- ``condition_expression_cache``: a ConditionExpression is lexed again (six regular expressions tried
  at every character run) for every conditional write, twice per update. The tokens depend only on
  the text and are kept per text; resolving names and values runs as before.
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
  one pass, kept until the next request that may write) and sorted the same way, so moto
  filters, pages and projects the same list in the same order.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import pickle
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from dozor_local import moto_requests

_touched: ContextVar[dict[str, set[Any]] | None] = ContextVar("dozor_touched_partitions", default=None)
_clones: ContextVar[dict[str, Any] | None] = ContextVar("dozor_table_clones", default=None)
_dynamodb_lock = threading.RLock()
_MISSING = object()
_ATOMIC = (str, int, float, bool, bytes, type(None))
_PARSED_LIMIT = 4096  # distinct expression texts kept; then the cache starts over


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


# --- update_expression_cache -----------------------------------------------------------------------

# (parser class, expression text) -> the parsed tree; and the trees whose parent links are sound,
# with the (names, table keys) their expression-only checks passed for (`_validated`).
_parsed: dict[tuple[type, str], Any] = {}
_checked: dict[int, tuple[Any, set[tuple[Any, ...]]]] = {}
_frozen: dict[int, tuple[Any, bytes]] = {}  # the same trees, pickled


def _update_expression_cache(swaps: _Swaps) -> None:
    from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]  # noqa: PLC0415
        UpdateExpressionParser,
    )

    make = UpdateExpressionParser.make.__func__

    def cached_make(cls: type, expression_str: str) -> Any:
        key = (cls, expression_str)
        tree = _parsed.get(key)
        if tree is None:
            tree = make(cls, expression_str)  # a parse error raises and is not kept
            if len(_parsed) >= _PARSED_LIMIT:
                _clear_caches()
            _parsed[key] = tree
            if _sound(tree):
                _checked[id(tree)] = (tree, set())
            with contextlib.suppress(pickle.PicklingError, TypeError, AttributeError, RecursionError):
                _frozen[id(tree)] = (tree, pickle.dumps(tree, pickle.HIGHEST_PROTOCOL))
        return tree

    swaps.set(UpdateExpressionParser, "make", classmethod(cached_make))


def _sound(tree: Any) -> bool:
    """Whether every node's `parent` is the node whose children hold it: then a check that returns
    each node unchanged leaves the tree exactly as it found it, and skipping it changes nothing."""
    from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]  # noqa: PLC0415

    stack = [(tree, None)]
    while stack:
        node, parent = stack.pop()
        if node.parent is not parent:
            return False
        stack += [(child, node) for child in node.children or [] if isinstance(child, Node)]
    return True


# --- update_expression_validation ------------------------------------------------------------------


def _update_expression_validation(swaps: _Swaps) -> None:
    from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]  # noqa: PLC0415
        DepthFirstTraverser,
        Expression,
        Node,
        UpdateExpressionFunction,
    )
    from moto.dynamodb.parsing.validators import (  # noqa: PLC0415
        ActionCountValidator,
        OverlappingPathsValidator,
        UpdateExpressionValidator,
        UpdateHashRangeKeyValidator,
    )

    is_node: dict[type, bool] = {}
    descends: dict[type, bool] = {}
    handled: dict[tuple[type, type], Any] = {}  # (traverser class, node class) -> map key or None

    def node_class(kind: type) -> bool:
        found = is_node.get(kind)
        if found is None:
            found = is_node[kind] = issubclass(kind, Node)
        return found

    def find_clauses(self: Any, clause_types: list[type]) -> list[Any]:
        clauses = []
        for child in self.children or []:
            kind = type(child)
            if kind in clause_types:
                clauses.append(child)
            else:
                descend = descends.get(kind)
                if descend is None:
                    descend = descends[kind] = issubclass(kind, (Expression, UpdateExpressionFunction))
                if descend:
                    clauses.extend(child.find_clauses(clause_types))
        return clauses

    no_hook = DepthFirstTraverser.pre_processing_of_child

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        kind = type(node)
        if not (is_node.get(kind) or node_class(kind)):
            return node
        parent_node = node.parent
        if node.children is not None:
            hooked = type(self).pre_processing_of_child is not no_hook
            for i, child_node in enumerate(node.children):
                if hooked:
                    self.pre_processing_of_child(node, i)
                self.traverse_node_recursively(child_node, i)
        key = handled.get((type(self), kind), _MISSING)
        if key is _MISSING:
            key = handled[type(self), kind] = _map_key(self, kind)
        if key is not None:
            processing = self.__dict__.get("_dozor_map")
            if processing is None:
                processing = self.__dict__["_dozor_map"] = self._processing_map()
            node = processing[key](node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node

    def node_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        frozen = _frozen.get(id(self))
        if not memo and frozen is not None and frozen[0] is self:
            # A cached tree, copied whole (the validator's copy): unpickling its pickle builds
            # the same objects deepcopy would, in C.
            return pickle.loads(frozen[1])
        return _copy_node(self, memo, node_class)

    original_init = UpdateExpressionValidator.__init__
    expression_only = (ActionCountValidator, OverlappingPathsValidator, UpdateHashRangeKeyValidator)

    def validator_init(self: Any, expression: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, expression, *args, **kwargs)
        self._dozor_source = expression

    def validate(self: Any) -> Any:
        entry = _checked.get(id(self._dozor_source))
        first = tuple(type(p) for p in self.processors[:3])
        if entry is None or entry[0] is not self._dozor_source or first != expression_only:
            node = self.node_to_validate
            for processor in self.processors:
                node = processor.traverse(node)
            return node
        names = self.expression_attribute_names or {}
        key = (tuple(sorted(names.items())), tuple(self.table.table_key_attrs))
        node = self.node_to_validate
        if key not in entry[1]:
            for processor in self.processors[:3]:
                node = processor.traverse(node)
            entry[1].add(key)
        for processor in self.processors[3:]:
            node = processor.traverse(node)
        return node

    swaps.set(Node, "find_clauses", find_clauses)
    swaps.set(Node, "__deepcopy__", node_deepcopy)
    swaps.set(DepthFirstTraverser, "traverse_node_recursively", traverse_node_recursively)
    swaps.set(UpdateExpressionValidator, "__init__", validator_init)
    swaps.set(UpdateExpressionValidator, "validate", validate)


def _map_key(traverser: Any, kind: type) -> type | None:
    """The first class of the traverser's processing map a node of `kind` is an instance of, as
    `DepthFirstTraverser.process` picks it (None: the traverser leaves such nodes alone)."""
    if not issubclass(kind, traverser.nodes_to_be_processed()):
        return None
    return next((key for key in traverser._processing_map() if issubclass(kind, key)), None)


def _copy_node(node: Any, memo: dict[int, Any], node_class: Callable[[type], bool]) -> Any:
    """`copy.deepcopy` of an expression tree, as deepcopy does it (the same memo, so shared and
    parent links come out the same), without its generic dispatch for every node and string."""
    clone = object.__new__(type(node))
    memo[id(node)] = clone
    state = {}
    for name, value in node.__dict__.items():
        state[name] = _copy_value(value, memo, node_class)
    clone.__dict__.update(state)
    return clone


def _copy_value(value: Any, memo: dict[int, Any], node_class: Callable[[type], bool]) -> Any:
    kind = type(value)
    if kind in _ATOMIC:
        return value
    done = memo.get(id(value), _MISSING)
    if done is not _MISSING:
        return done
    if kind is list:
        copied: list[Any] = []
        memo[id(value)] = copied
        copied.extend(_copy_value(v, memo, node_class) for v in value)
        return copied
    if node_class(kind):
        return _copy_node(value, memo, node_class)
    return copy.deepcopy(value, memo)


# --- condition_expression_cache ------------------------------------------------------------------

_lexed: dict[str, tuple[tuple[Any, ...], ...]] = {}


def _condition_expression_cache(swaps: _Swaps) -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser  # noqa: PLC0415

    lex = ConditionExpressionParser._lex_condition_expression

    def cached_lex(self: Any) -> Any:
        # Lexing reads nothing but the text; every later step (names, values) still runs.
        text = self.condition_expression
        tokens = _lexed.get(text)
        if tokens is None:
            lexed = lex(self)  # an unreadable expression raises and is not kept
            if any(node.children != [] for node in lexed):
                return lexed
            if len(_lexed) >= _PARSED_LIMIT:
                _lexed.clear()
            tokens = _lexed[text] = tuple(node[:4] for node in lexed)
        # Fresh nodes each time: later steps may fill a node's children list.
        return deque(self.Node(*token, []) for token in tokens)

    swaps.set(ConditionExpressionParser, "_lex_condition_expression", cached_lex)


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


# Requests that never change an item; any other DynamoDB request starts a new generation, and the
# index partitions grouped under the old one are not used again.
_READS = frozenset(
    {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable", "ListTables"}
    | {"DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource", "DescribeEndpoints"}
)
_generation = [0]
# (id(table), index key attributes) -> (generation, table, {key values: items in table order})
_grouped: dict[tuple[int, tuple[str, ...]], tuple[int, Any, dict[tuple[Any, ...], list[Any]]]] = {}


def _partition_queries(swaps: _Swaps) -> None:
    from moto.dynamodb.models.dynamo_type import Item  # noqa: PLC0415
    from moto.dynamodb.models.table import Table  # noqa: PLC0415
    from moto.dynamodb.responses import DynamoHandler  # noqa: PLC0415

    original_query = Table.query
    signature = inspect.signature(original_query)
    original_call_action = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        try:
            return original_call_action(self)
        finally:
            if self._get_action() not in _READS:
                _generation[0] += 1

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, hash_key, *args, **kwargs).arguments
        if arguments.get("index_name"):
            conditions = dict(arguments.get("hash_key_conditions") or [])
            if not conditions:
                return original_query(self, hash_key, *args, **kwargs)
            names = tuple(conditions)
            entry = _grouped.get((id(self), names))
            if entry is None or entry[0] != _generation[0] or entry[1] is not self:
                groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
                for item in _items(self):
                    attrs = getattr(item, "attrs", None) or {}
                    groups[tuple(_key_value(attrs.get(name)) for name in names)].append(item)
                entry = _grouped[id(self), names] = (_generation[0], self, groups)
            wanted = tuple(_key_value(conditions[name]) for name in names)
            if _ODD in wanted:
                pool = list(_items(self))
            else:
                odd = [i for key, items in entry[2].items() if _ODD in key for i in items]
                pool = entry[2].get(wanted, []) + odd
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
    "update_expression_cache": _update_expression_cache,
    "update_expression_validation": _update_expression_validation,
    "condition_expression_cache": _condition_expression_cache,
    "dispatch_method_names": _dispatch_method_names,
    "light_errors": _light_errors,
    "partition_queries": _partition_queries,
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
    _parsed.clear()
    _checked.clear()
    _frozen.clear()
    _lexed.clear()
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

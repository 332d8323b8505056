"""Workarounds for moto's DynamoDB expressions: parsed, lexed and validated again for every write.

Installed with the rest by `moto_quirks.install`; like them, each changes how fast moto answers,
never what it answers (`tests/integration/local/test_moto_quirks.py`). What the profile of a
scored order showed, and what each patch does about it:

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
  them with the same names and keys. They still run, and raise, the first time. The other seven
  (values, paths, functions, missing paths, arithmetic, key types, empty keys) are done in one
  walk instead of seven: at each node, once its children are done, each check's handler in turn.
  That is the same as seven walks because each handler reads only its node's subtree (done by
  then), the item, and the path-resolver's flag, which its hook sets before each child in the same
  order; the one exception, a missing path that a later ``if_not_exists`` would have taken in, is
  refused at once by the missing-path check. Any error: moto's seven walks run again from a fresh
  copy, so an invalid update fails with moto's error, the one its order of walks finds first.
- ``planned_updates``: even after the patches above, validating an update and executing it walk
  its tree node by node, and every top-level SET re-measures the whole item against the 400 KB
  limit (the sum of every attribute's size, again for each SET): half of an UpdateItem's cost in
  the demo. Most updates a service sends only SET, ADD, DELETE and REMOVE top-level attributes,
  from values or ``if_not_exists(attribute, value)``. For such a text the actions are read once
  (a plan, kept per text); a request then checks what moto's walks would refuse (a repeated
  clause, a name or value not given, an attribute named twice, a key attribute, a reserved
  word, a value moto could not read, a type ADD or DELETE cannot take, an index key SET empty
  or to another type, an item that might outgrow the limit) and, if any could, leaves the
  request to moto's walks. Otherwise the
  actions are applied as moto's executors apply them (the same objects, ``if_not_exists`` taking
  the item's own value, sets extended and shrunk in place), with the limit checked once against
  the item's size plus every value written, a bound no order of the actions can exceed.
- ``condition_expression_cache``: a ConditionExpression is lexed again (six regular expressions tried
  at every character run) for every conditional write, twice per update. The tokens depend only on
  the text and are kept per text; resolving names and values runs as before.
- ``condition_parse_memo``: the same condition, with the same names and values, is then parsed
  two or three times in one request (once to check which names and values it uses, once to
  evaluate it). The last few parsed trees are kept with what they were parsed from; moto only
  evaluates a tree, never changes it.
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import re
from collections import deque
from collections.abc import Callable
from typing import Any

Swaps = Any  # moto_quirks._Swaps: set(owner, name, value) remembered so that it can be undone

_MISSING = object()
_ATOMIC = (str, int, float, bool, bytes, type(None))
_PARSED_LIMIT = 4096  # distinct expression texts kept; then the cache starts over


# --- update_expression_cache -----------------------------------------------------------------------

# (parser class, expression text) -> the parsed tree; and the trees whose parent links are sound,
# with the (names, table keys) their expression-only checks passed for (`_validated`).
_parsed: dict[tuple[type, str], Any] = {}
_checked: dict[int, tuple[Any, set[tuple[Any, ...]]]] = {}
_frozen: dict[int, tuple[Any, bytes]] = {}  # the same trees, pickled


def _update_expression_cache(swaps: Swaps) -> None:
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
                clear_caches()
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


def _update_expression_validation(swaps: Swaps) -> None:
    from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]  # noqa: PLC0415
        DepthFirstTraverser,
        Expression,
        Node,
        UpdateExpressionAddAction,
        UpdateExpressionDeleteAction,
        UpdateExpressionFunction,
        UpdateExpressionRemoveAction,
        UpdateExpressionSetAction,
    )
    from moto.dynamodb.parsing.validators import (  # noqa: PLC0415
        ActionCountValidator,
        ExpressionAttributeResolvingProcessor,
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
    actions: tuple[type, ...] = (UpdateExpressionSetAction, UpdateExpressionRemoveAction)
    actions += (UpdateExpressionDeleteAction, UpdateExpressionAddAction)
    is_action: dict[type, bool] = {}

    def action(kind: type) -> bool:
        found = is_action.get(kind)
        if found is None:
            found = is_action[kind] = issubclass(kind, actions)
        return found

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

    def node_init(self: Any, children: Any = None) -> None:
        # Node.__init__, with the test for Node children by class (once per class) instead of an
        # isinstance against the abstract class for each child: paths that are not in the item
        # yet make a NoneExistingPath each, thousands per order.
        self.type = self.__class__.__name__
        assert children is None or isinstance(children, list)
        self.children = children
        self.parent = None
        if isinstance(children, list):
            for child in children:
                kind = type(child)
                if is_node.get(kind) or node_class(kind):
                    child.set_parent(self)

    def walk_once(steps: list[Any], root: Any) -> Any:
        """The traversals of `steps`, one after another, done in one walk: at each node, once its
        children are done, each step's handler in turn (see `validate`)."""
        hooks = [step for step in steps if type(step).pre_processing_of_child is not no_hook]
        resolving = ExpressionAttributeResolvingProcessor.pre_processing_of_child
        maps = []
        for step in steps:
            processing = step.__dict__.get("_dozor_map")
            if processing is None:
                processing = step.__dict__["_dozor_map"] = step._processing_map()
            maps.append((step, type(step), processing))

        def walk(node: Any, child_id: int) -> Any:
            kind = type(node)
            if not (is_node.get(kind) or node_class(kind)):
                return node
            parent_node = node.parent
            if node.children is not None:
                # moto's path resolver's hook acts only below the four actions: elsewhere skip it.
                acting = [
                    h for h in hooks if type(h).pre_processing_of_child is not resolving or action(kind)
                ]
                for i, child_node in enumerate(node.children):
                    for hook in acting:
                        hook.pre_processing_of_child(node, i)
                    walk(child_node, i)
            for step, step_class, processing in maps:
                kind = type(node)
                key = handled.get((step_class, kind), _MISSING)
                if key is _MISSING:
                    key = handled[step_class, kind] = _map_key(step, kind)
                if key is not None:
                    node = processing[key](node)
                    node.parent = parent_node
                    if parent_node:
                        parent_node.children[child_id] = node
            return node

        return walk(root, -1)

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
        try:
            return walk_once(self.processors[3:], node)
        except Exception:
            # moto's own walks, from a fresh copy and fresh processors: its error, in its order.
            self.processors = self.get_ast_processors()
            node = copy.deepcopy(self._dozor_source)
            for processor in self.processors[3:]:
                node = processor.traverse(node)
            return node

    swaps.set(Node, "__init__", node_init)
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


def _condition_expression_cache(swaps: Swaps) -> None:
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


# --- condition_parse_memo ----------------------------------------------------------------------

_MEMO_SIZE = 8
# (expression, names, values, op, names found, values found), the most recent first
_conditions: deque[tuple[str, Any, Any, Any, list[str], list[str]]] = deque(maxlen=_MEMO_SIZE)


def _condition_parse_memo(swaps: Swaps) -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser  # noqa: PLC0415

    parse = ConditionExpressionParser.parse

    def remembered_parse(self: Any) -> Any:
        # An update's condition is parsed two or three times per request (to check the names and
        # values it uses, then to evaluate it), with the same text, names and values. The tree
        # is only ever evaluated (Op.expr reads the item), so the same one serves each of them.
        text, names = self.condition_expression, self.expression_attribute_names
        values = self.expression_attribute_values
        if not text:
            return parse(self)
        for seen, seen_names, seen_values, op, names_found, values_found in _conditions:
            if seen == text and seen_names == names and seen_values == values:
                self.expr_attr_names_found.extend(names_found)
                self.expr_attr_values_found.extend(values_found)
                return op
        before = (len(self.expr_attr_names_found), len(self.expr_attr_values_found))
        op = parse(self)  # an invalid condition raises and is not kept
        found = (self.expr_attr_names_found[before[0] :], self.expr_attr_values_found[before[1] :])
        _conditions.appendleft((text, copy.deepcopy(names), copy.deepcopy(values), op, *found))
        return op

    swaps.set(ConditionExpressionParser, "parse", remembered_parse)


# --- planned_updates -------------------------------------------------------------------------------

_PLAN_TOKEN = re.compile(r"\s*(?:(#?[A-Za-z_][A-Za-z0-9_]*)|(:[A-Za-z0-9_]+)|([=,()]))")
_CLAUSES = ("SET", "ADD", "DELETE", "REMOVE")
_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L", "M"})
_SETS = frozenset({"SS", "NS", "BS"})
_ITEM_LIMIT = 405_000  # moto's LimitedSizeDict
# (kind, attribute token, value token, if_not_exists attribute token or None)
Action = tuple[str, str, str | None, str | None]
_plans: dict[str, tuple[Action, ...] | None] = {}
_texts: dict[int, tuple[Any, str]] = {}  # id(parsed tree) -> (the tree, its text)


def _tokens(text: str) -> list[str] | None:
    found, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _PLAN_TOKEN.match(text, at)
        if match is None:
            return None
        found.append(match.group(match.lastindex or 0))
        at = match.end()
    return found


def plan(text: str) -> tuple[Action, ...] | None:
    """The actions of an update that only SETs (to a value, or to if_not_exists of an attribute
    and a value), ADDs, DELETEs and REMOVEs top-level attributes; None for anything else."""
    if text in _plans:
        return _plans[text]
    tokens, seen = _tokens(text), set()
    actions: list[Action] = []
    try:
        at = 0
        while tokens is not None and at < len(tokens):
            clause = tokens[at].upper()
            if clause not in _CLAUSES or clause in seen:
                raise ValueError(clause)
            seen.add(clause)
            at += 1
            while True:
                target = _path(tokens[at])
                if clause == "SET":
                    if tokens[at + 1] != "=":
                        raise ValueError(tokens[at + 1])
                    if tokens[at + 2] == "if_not_exists":
                        if tokens[at + 3] != "(" or tokens[at + 5] != "," or tokens[at + 7] != ")":
                            raise ValueError(tokens[at + 3 : at + 8])
                        actions.append((clause, target, _value(tokens[at + 6]), _path(tokens[at + 4])))
                        at += 8
                    else:
                        actions.append((clause, target, _value(tokens[at + 2]), None))
                        at += 3
                elif clause == "REMOVE":
                    actions.append((clause, target, None, None))
                    at += 1
                else:
                    actions.append((clause, target, _value(tokens[at + 1]), None))
                    at += 2
                if at < len(tokens) and tokens[at] == ",":
                    at += 1
                    continue
                break
        result = tuple(actions) if tokens is not None and actions else None
    except (ValueError, IndexError):
        result = None
    if len(_plans) >= _PARSED_LIMIT:
        _plans.clear()
    _plans[text] = result
    return result


def _path(token: str) -> str:
    if token[0] == ":" or token in "=,()" or token.upper() in _CLAUSES or token == "if_not_exists":
        raise ValueError(token)
    return token


def _value(token: str) -> str:
    if token[0] != ":":
        raise ValueError(token)
    return token


class _Planned:
    """A validated plan: the actions with their names resolved and values made, ready to apply."""

    def __init__(self, steps: list[tuple[str, str, Any, str | None]]) -> None:
        self.steps = steps

    def normalize(self) -> None:
        pass  # moto flattens and orders a tree's actions; a plan's are flat, on distinct attributes

    def apply(self, item: Any) -> None:
        from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415

        attrs = item.attrs
        for kind, name, value, source in self.steps:
            if kind == "SET":
                taken = attrs.get(source) if source is not None else None
                dict.__setitem__(attrs, name, taken if taken is not None else value)
            elif kind == "REMOVE":
                attrs.pop(name, None)
            elif kind == "ADD" and value.type == "N":
                dict.__setitem__(attrs, name, attrs.get(name, DynamoType({"N": "0"})) + value)
            elif kind == "ADD":
                members = attrs.get(name)
                if members is None:
                    members = DynamoType({value.type: []})
                    dict.__setitem__(attrs, name, members)
                for member in value.value:
                    if member not in members.value:
                        members.value.append(member)
            else:  # DELETE
                members = attrs.get(name)
                if members is None:
                    continue
                for member in value.value:
                    with contextlib.suppress(KeyError, ValueError):
                        members.value.remove(member)
                if not members.value:
                    del attrs[name]


def _planned(validator: Any, text: str) -> _Planned | None:
    """The plan for this request, or None where moto's own walks must decide (they may refuse)."""
    from moto.dynamodb.models.dynamo_type import DynamoType  # noqa: PLC0415
    from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords  # noqa: PLC0415

    actions = plan(text)
    if actions is None:
        return None
    names = validator.expression_attribute_names or {}
    values = validator.expression_attribute_values or {}
    table, attrs = validator.table, validator.item.attrs
    keys = set(table.table_key_attrs)
    reserved = ReservedKeywords.get_reserved_keywords()

    def resolved(token: str) -> str | None:
        if token[0] == "#":
            return names.get(token)
        return None if token.upper() in reserved else token

    typed = {d["AttributeName"]: d["AttributeType"] for d in table.attr}  # the table's and indexes' keys

    def refused_for_a_key(token: str, value: Any) -> bool:
        """moto's key-type and empty-key checks of a SET: they compare the written token (a plain
        name; never a #placeholder) with the attributes the table and its indexes are keyed on."""
        empty = not value.value and value.type in ("S", "B") and token in table.attribute_keys
        return empty or typed.get(token, value.type) != value.type

    steps, targets = [], set()
    written = 0  # what the actions may add to the item's size: each value, with room for a sum's digits
    for kind, target_token, value_token, source_token in actions:
        name = resolved(target_token)
        if name is None or name in keys or name in targets:
            return None
        targets.add(name)
        value = None
        if value_token is not None:
            raw = values.get(value_token)
            if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in _TYPES:
                return None
            value = DynamoType(raw)
            written += value.size() + 64
        source = resolved(source_token) if source_token is not None else None
        if source_token is not None and source is None:
            return None
        if source is not None and source in attrs:
            written += attrs[source].size()
        if kind == "SET":
            result = attrs.get(source, value) if source is not None else value
            if refused_for_a_key(target_token, result):
                return None
        if kind in ("ADD", "DELETE"):
            current = attrs.get(name)
            if value.type not in _SETS | {"N"} or (kind == "DELETE" and value.type == "N"):  # type: ignore[union-attr]
                return None
            if value.type in _SETS and (not value.value or len(set(value.value)) != len(value.value)):  # type: ignore[union-attr]
                return None
            if current is not None and current.type != value.type:  # type: ignore[union-attr]
                return None
        steps.append((kind, name, value, source))
    if any(source is not None and source in targets and source != name for _, name, _, source in steps):
        return None  # an attribute both read and written by the same update: moto's order decides
    size = sum(len(key.encode()) + (v.size() if isinstance(v, DynamoType) else 0) for key, v in attrs.items())
    if size + written + sum(len(name.encode()) for name in targets) > _ITEM_LIMIT:
        return None
    return _Planned(steps)


def _planned_updates(swaps: Swaps) -> None:
    from moto.dynamodb.parsing.executors import UpdateExpressionExecutor  # noqa: PLC0415
    from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]  # noqa: PLC0415
        UpdateExpressionParser,
    )
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator  # noqa: PLC0415

    make = UpdateExpressionParser.make
    validator_init = UpdateExpressionValidator.__init__
    validate = UpdateExpressionValidator.validate
    execute = UpdateExpressionExecutor.execute

    def remembering_make(expression_str: str) -> Any:
        tree = make(expression_str)
        if len(_texts) >= _PARSED_LIMIT:
            _texts.clear()
        _texts[id(tree)] = (tree, expression_str)  # the tree kept alive: its id is not reused
        return tree

    def planning_init(
        self: Any,
        expression: Any,
        expression_attribute_names: Any,
        expression_attribute_values: Any,
        item: Any,
        table: Any,
    ) -> None:
        names, values = expression_attribute_names, expression_attribute_values
        arguments = (expression, names, values, item, table)
        known = _texts.get(id(expression))
        text = known[1] if known is not None and known[0] is expression else None
        if text is None or plan(text) is None:
            validator_init(self, *arguments)
            return
        # moto's __init__ would copy the tree for its walks: only if they are needed (`validate`)
        self.expression_attribute_names, self.expression_attribute_values = names, values
        self.item, self.table = item, table
        self._dozor_plan = (text, arguments)

    def planning_validate(self: Any) -> Any:
        pending = self.__dict__.pop("_dozor_plan", None)
        if pending is None:
            return validate(self)
        text, arguments = pending
        planned = _planned(self, text)
        if planned is not None:
            return planned
        validator_init(self, *arguments)
        return validate(self)

    def planning_execute(self: Any, node: Any = None) -> None:
        if node is None and isinstance(self.update_ast, _Planned):
            self.update_ast.apply(self.item)
            return
        execute(self, node)

    swaps.set(UpdateExpressionParser, "make", staticmethod(remembering_make))
    swaps.set(UpdateExpressionValidator, "__init__", planning_init)
    swaps.set(UpdateExpressionValidator, "validate", planning_validate)
    swaps.set(UpdateExpressionExecutor, "execute", planning_execute)


PATCHES: dict[str, Callable[[Swaps], None]] = {
    "update_expression_cache": _update_expression_cache,
    "update_expression_validation": _update_expression_validation,
    "condition_expression_cache": _condition_expression_cache,
    "condition_parse_memo": _condition_parse_memo,
    "planned_updates": _planned_updates,
}


def clear_caches() -> None:
    _parsed.clear()
    _checked.clear()
    _frozen.clear()
    _lexed.clear()
    _conditions.clear()
    _plans.clear()
    _texts.clear()

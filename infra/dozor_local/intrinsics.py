"""Evaluate CloudFormation intrinsic functions against resources that already exist.

Covers what Dozor's template uses and what templates commonly put in environment variables and
resource properties: Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::If (with
Conditions), Fn::FindInMap, Fn::Base64 and the pseudo parameters. Anything else raises
`UnresolvableError` naming the function, rather than deploying a half-resolved value.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any


class UnresolvableError(ValueError):
    """A value refers to something the local stack does not have (or an unsupported function)."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()

_SUB_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")

RefLookup = Callable[[str], str]
AttLookup = Callable[[str, str], str]


def references(value: Any) -> Iterator[str]:
    """Yield every logical id (or parameter name) that `value` refers to through Ref, GetAtt or Sub."""
    if isinstance(value, list):
        for item in value:
            yield from references(item)
    elif isinstance(value, dict):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" and isinstance(arg, str):
                yield arg
                return
            if key == "Fn::GetAtt":
                target = arg.split(".", 1)[0] if isinstance(arg, str) else arg[0]
                if isinstance(target, str):
                    yield target
                return
            if key == "Fn::Sub":
                template, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                for name in _SUB_PLACEHOLDER.findall(template):
                    if not name.startswith("!") and name.split(".", 1)[0] not in variables:
                        yield name.split(".", 1)[0]
                yield from references(variables)
                return
        for item in value.values():
            yield from references(item)


def attribute_references(value: Any) -> Iterator[tuple[str, str]]:
    """Yield every (logical id, attribute) pair that `value` reads through Fn::GetAtt or Fn::Sub."""
    if isinstance(value, list):
        for item in value:
            yield from attribute_references(item)
    elif isinstance(value, dict):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Fn::GetAtt":
                target, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                if isinstance(target, str) and isinstance(attribute, str):
                    yield target, attribute
                return
            if key == "Fn::Sub":
                template = arg if isinstance(arg, str) else arg[0]
                for name in _SUB_PLACEHOLDER.findall(template):
                    if "." in name and not name.startswith("!"):
                        target, attribute = name.split(".", 1)
                        yield target, attribute
        for item in value.values():
            yield from attribute_references(item)


class Resolver:
    """Resolves intrinsics given lookups for Ref and GetAtt of resources, plus parameters."""

    def __init__(
        self,
        *,
        parameters: Mapping[str, str],
        pseudo: Mapping[str, str],
        ref: RefLookup,
        get_att: AttLookup,
        conditions: Mapping[str, Any] | None = None,
        mappings: Mapping[str, Any] | None = None,
        passthrough: frozenset[str] = frozenset(),
    ) -> None:
        self._names = {**pseudo, **parameters}
        self._ref = ref
        self._get_att = get_att
        self._conditions_def = dict(conditions or {})
        self._conditions: dict[str, bool] = {}
        self._mappings = dict(mappings or {})
        # Logical ids whose plain Ref / GetAtt stay as they are (CloudFormation resolves them later).
        self._passthrough = passthrough

    def resolve(self, value: Any) -> Any:
        """Return `value` with every intrinsic function replaced by its value (NO_VALUE entries dropped)."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" or key.startswith("Fn::"):
                return self._function(key, arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def condition(self, name: str) -> bool:
        """Evaluate a named condition from the template's Conditions section."""
        if name not in self._conditions:
            if name not in self._conditions_def:
                raise UnresolvableError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self._evaluate(self._conditions_def[name]))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self._names:
            return self._names[name]
        return self._ref(name)

    def _evaluate(self, expression: Any) -> Any:
        if isinstance(expression, dict) and len(expression) == 1:
            ((key, arg),) = expression.items()
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Equals":
                left, right = (self.resolve(v) for v in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self._evaluate(arg[0])
            if key == "Fn::And":
                return all(self._evaluate(v) for v in arg)
            if key == "Fn::Or":
                return any(self._evaluate(v) for v in arg)
        return self.resolve(expression)

    def _function(self, key: str, arg: Any) -> Any:
        if key == "Ref":
            return {key: arg} if arg in self._passthrough else self.ref(arg)
        if key == "Fn::GetAtt":
            logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            if logical_id in self._passthrough:
                return {key: [logical_id, attribute]}
            return self._get_att(logical_id, self.resolve(attribute))
        if key == "Fn::Sub":
            return self._sub(arg)
        if key == "Fn::Join":
            separator, items = arg
            return str(separator).join(str(item) for item in self.resolve(items))
        if key == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::Split":
            separator, text = arg
            return str(self.resolve(text)).split(separator)
        if key == "Fn::If":
            name, when_true, when_false = arg
            return self.resolve(when_true if self.condition(name) else when_false)
        if key in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return self._evaluate({key: arg})
        if key == "Fn::FindInMap":
            mapping, top, second = (self.resolve(v) for v in arg)
            try:
                return self._mappings[mapping][top][second]
            except KeyError as exc:
                raise UnresolvableError(f"Fn::FindInMap {mapping}/{top}/{second}: no such entry") from exc
        if key == "Fn::Base64":
            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        raise UnresolvableError(f"{key} is not supported by the local stack")

    def _sub(self, arg: Any) -> str:
        template, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if name.split(".", 1)[0] in self._passthrough:
                raise UnresolvableError(
                    f"Fn::Sub of ${{{name}}}: not supported between CloudFormation resources"
                )
            if "." in name and name not in self._names:
                logical_id, attribute = name.split(".", 1)
                return str(self._get_att(logical_id, attribute))
            return str(self.ref(name))

        return _SUB_PLACEHOLDER.sub(replace, template)

"""A JSON Schema compiled into one fast yes/no predicate.

Only the keywords the config schema uses are compiled; any other raises
`Unsupported` so the caller falls back to jsonschema for everything. The
predicate must agree with jsonschema on validity (tests check that on many
invalid files); it never explains why, jsonschema does that.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]


class Unsupported(Exception):
    """The schema uses a keyword this compiler does not know."""


_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "examples", "default"}
)
_OBJECT_KEYWORDS = frozenset(
    {
        "properties",
        "additionalProperties",
        "patternProperties",
        "required",
        "minProperties",
        "propertyNames",
    }
)
_NUMBERS = (int, float)


def _always(v: Any) -> bool:
    return True


def _never(v: Any) -> bool:
    return False


def _integer(v: Any) -> bool:
    t = type(v)
    return t is int or (t is float and math.isfinite(v) and v.is_integer())


_TYPES: Mapping[str, Check] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "integer": _integer,
    "number": lambda v: type(v) in _NUMBERS,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


def compile_schema(doc: Mapping[str, Any]) -> Check:
    """The predicate for `doc`, whose `$ref`s point into its own `$defs`."""
    defs: dict[str, Check] = {}
    raw = doc.get("$defs", {})
    # Twice: the second pass binds each $ref straight to the first pass's predicate.
    for _ in range(2):
        for name, sub in raw.items():
            defs[name] = _compile(sub, defs)
    return _compile(doc, defs)


def _all_of(checks: list[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        a, b = checks
        return lambda v: a(v) and b(v)
    if len(checks) == 3:
        a, b, c = checks
        return lambda v: a(v) and b(v) and c(v)
    chain = tuple(checks)

    def check(v: Any) -> bool:
        return all(c(v) for c in chain)

    return check


def _compile(node: Any, defs: dict[str, Check]) -> Check:
    if node is True:
        return _always
    if node is False:
        return _never
    if not isinstance(node, Mapping):
        raise Unsupported(repr(node))
    checks: list[Check] = []
    object_only = node.get("type") == "object"
    for keyword, arg in node.items():
        if keyword in _ANNOTATIONS or keyword in _OBJECT_KEYWORDS or keyword in ("then", "else"):
            continue
        if keyword == "type" and object_only and _OBJECT_KEYWORDS.intersection(node):
            continue  # the object check below rejects non-objects itself
        checks.append(_keyword(keyword, arg, node, defs))
    if _OBJECT_KEYWORDS.intersection(node):
        checks.append(_object(node, defs, object_only))
    return _all_of(checks)


def _keyword(keyword: str, arg: Any, node: Mapping[str, Any], defs: dict[str, Check]) -> Check:
    if keyword == "type":
        names = [arg] if isinstance(arg, str) else list(arg)
        kinds = [_TYPES[t] for t in names]
        if len(kinds) == 1:
            return kinds[0]
        a, b, *rest = kinds
        if not rest:
            return lambda v: a(v) or b(v)
        return lambda v: any(k(v) for k in kinds)
    if keyword == "enum":
        allowed = tuple(arg)
        # type() first: in Python 0 == False, in JSON Schema they differ.
        return lambda v: any(type(v) is type(a) and v == a for a in allowed)
    if keyword == "$ref":
        prefix = "#/$defs/"
        if not isinstance(arg, str) or not arg.startswith(prefix):
            raise Unsupported(f"$ref {arg}")
        name = arg[len(prefix) :]
        bound = defs.get(name)
        if bound is not None:
            return bound
        return lambda v: defs[name](v)
    if keyword == "items":
        item = _compile(arg, defs)

        def items(v: Any) -> bool:
            if type(v) is list:
                for x in v:
                    if not item(x):
                        return False
            return True

        return items
    if keyword == "if":
        cond = _compile(arg, defs)
        then = _compile(node.get("then", True), defs)
        other = _compile(node.get("else", True), defs)
        return lambda v: then(v) if cond(v) else other(v)
    n = arg
    if keyword == "minItems":
        return lambda v: type(v) is not list or len(v) >= n
    if keyword == "minLength":
        return lambda v: type(v) is not str or len(v) >= n
    if keyword == "minimum":
        return lambda v: type(v) not in _NUMBERS or v >= n
    if keyword == "exclusiveMinimum":
        return lambda v: type(v) not in _NUMBERS or v > n
    if keyword == "maximum":
        return lambda v: type(v) not in _NUMBERS or v <= n
    raise Unsupported(keyword)


def _object(node: Mapping[str, Any], defs: dict[str, Check], object_only: bool) -> Check:
    props = {k: _compile(s, defs) for k, s in node.get("properties", {}).items()}
    patterns = [
        (re.compile(p).search, _compile(s, defs))
        for p, s in node.get("patternProperties", {}).items()
    ]
    extra = node.get("additionalProperties", True)
    extra_check = None if extra is True else _compile(extra, defs)
    required = tuple(node.get("required", ()))
    min_props = int(node.get("minProperties", 0))
    names = _compile(node["propertyNames"], defs) if "propertyNames" in node else None
    not_object = not object_only  # a non-object passes unless the type says object

    def check(v: Any) -> bool:
        if type(v) is not dict:
            return not_object
        for key, item in v.items():
            if names is not None and not names(key):
                return False
            prop = props.get(key)
            if prop is not None and not prop(item):
                return False
            matched = prop is not None
            for search, sub in patterns:
                if search(key):
                    matched = True
                    if not sub(item):
                        return False
            if not matched and extra_check is not None and not extra_check(item):
                return False
        if len(v) < min_props:
            return False
        return all(r in v for r in required)

    return check

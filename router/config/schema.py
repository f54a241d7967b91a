"""JSON Schema validation of one file's sections, with errors in the config's words.

The schema (schemas/config.schema.json, shipped as router/schemas) is the single
statement of the format. jsonschema is the judge and writes every error, but it
is slow on big configs (and slow to import), so the schema is also compiled once
per process into plain predicates that say only "valid or not". A valid file
(the usual case) never touches jsonschema; an invalid one is run through it for
the full list of errors. A keyword the compiler does not know makes every file
go through jsonschema, so editing the schema can never make validation laxer.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from router.config.sources import Issues, Source, from_path, join

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

Check = Callable[[Any], bool]
SCHEMA_FILE = "config.schema.json"


@functools.cache
def schema() -> Mapping[str, Any]:
    """The config's JSON Schema (Draft 2020-12)."""
    text = resources.files("router").joinpath("schemas", SCHEMA_FILE).read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@functools.cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


@functools.cache
def fast_check() -> Check | None:
    """The schema as one predicate; None when it uses a keyword not compiled here."""
    doc = schema()
    defs: dict[str, Check] = {}
    try:
        for name, sub in doc.get("$defs", {}).items():
            defs[name] = _compile(sub, defs)
        return _compile(doc, defs)
    except _Unsupported:
        return None


def validate(data: Mapping[str, Any], source: Source, offsets: dict[str, int], issues: Issues) -> None:
    """Report every schema error in one file's sections."""
    check = fast_check()
    if check is not None and check(data):
        return
    seen: set[tuple[str, str]] = set()
    for error in _validator().iter_errors(data):
        for pointer, message in _describe(_leaf(error), offsets):
            if (pointer, message) not in seen:
                seen.add((pointer, message))
                issues.at(pointer, message, source)


# --- translating jsonschema's errors ---------------------------------------------------

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}


def _leaf(error: ValidationError) -> ValidationError:
    """The most telling error inside an anyOf/oneOf."""
    if error.context:
        from jsonschema.exceptions import best_match

        best = best_match(error.context)
        if best is not None:
            return _leaf(best)
    return error


def _describe(error: ValidationError, offsets: dict[str, int]) -> list[tuple[str, str]]:
    pointer = from_path(error.absolute_path, offsets)
    keyword = str(error.validator)
    arg = error.validator_value
    value = error.instance
    title = error.schema.get("title") if isinstance(error.schema, Mapping) else None
    noun = "section" if not pointer else "condition" if title == "condition" else "key"
    if keyword == "additionalProperties" and isinstance(value, Mapping):
        known = list(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        out = []
        for key in value:
            if key in known or any(p.search(key) for p in patterns):
                continue
            message = f"unknown {noun} '{key}'" + _hint(key, known)
            if not pointer:
                message += f" (sections: {', '.join(known)})"
            out.append((join(pointer, key), message))
        return out
    if keyword == "required" and isinstance(value, Mapping):
        return [(pointer, f"missing required key '{k}'") for k in arg if k not in value]
    if keyword == "type":
        wanted = [arg] if isinstance(arg, str) else list(arg)
        words = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted if w != "null")
        return [(pointer, f"expected {words}, got {_kind(value)}")]
    if keyword == "enum":
        choices = [c for c in arg if isinstance(c, str)]
        got = f" (got {_quote(value)})" if _quote(value) else ""
        hint = _hint(value, choices) if isinstance(value, str) else ""
        return [(pointer, f"must be one of: {', '.join(choices)}{got}{hint}")]
    simple = {
        "minimum": f"must be at least {arg}",
        "exclusiveMinimum": f"must be greater than {arg}",
        "maximum": f"must be at most {arg}",
        "exclusiveMaximum": f"must be less than {arg}",
        "minItems": "must not be empty" if arg == 1 else f"needs at least {arg} items",
        "minLength": "must not be empty",
        "minProperties": "must not be empty",
        "propertyNames": "a name must not be empty",
        "const": f"must be {arg!r}",
        "uniqueItems": "has an item twice",
        "pattern": "does not have the expected form",
    }
    return [(pointer, simple.get(keyword, f"is not valid ({keyword})"))]


def _hint(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _quote(value: Any) -> str:
    if isinstance(value, str) and len(value) <= 60:
        return f"'{value}'"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    return ""


def _kind(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"{json.dumps(value)}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# --- compiling the schema into predicates ----------------------------------------------


class _Unsupported(Exception):
    pass


_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "title", "description", "examples", "default"}
)
_OBJECT_KEYWORDS = frozenset(
    {"properties", "additionalProperties", "patternProperties", "required", "minProperties",
     "propertyNames"}
)


def _is_number(v: Any) -> bool:
    return type(v) in (int, float)


_TYPES: Mapping[str, Check] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int or (type(v) is float and math.isfinite(v) and v.is_integer()),
    "number": _is_number,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


def _compile(node: Any, defs: dict[str, Check]) -> Check:
    if node is True or node == {}:
        return lambda v: True
    if node is False:
        return lambda v: False
    if not isinstance(node, Mapping):
        raise _Unsupported(repr(node))
    checks: list[Check] = []
    for keyword, arg in node.items():
        if keyword in _ANNOTATIONS or keyword in _OBJECT_KEYWORDS or keyword in ("then", "else"):
            continue
        checks.append(_keyword(keyword, arg, node, defs))
    if _OBJECT_KEYWORDS.intersection(node):
        checks.append(_object(node, defs))
    if len(checks) == 1:
        return checks[0]
    all_checks = tuple(checks)
    return lambda v: all(c(v) for c in all_checks)


def _keyword(keyword: str, arg: Any, node: Mapping[str, Any], defs: dict[str, Check]) -> Check:
    if keyword == "type":
        kinds = [_TYPES[t] for t in ([arg] if isinstance(arg, str) else arg)]
        return lambda v: any(k(v) for k in kinds)
    if keyword == "enum":
        allowed = tuple(arg)
        return lambda v: any(type(v) is type(a) and v == a for a in allowed)
    if keyword == "$ref":
        prefix = "#/$defs/"
        if not isinstance(arg, str) or not arg.startswith(prefix):
            raise _Unsupported(arg)
        name = arg[len(prefix) :]
        return lambda v: defs[name](v)
    if keyword == "items":
        item = _compile(arg, defs)
        return lambda v: type(v) is not list or all(item(x) for x in v)
    if keyword == "if":
        cond = _compile(arg, defs)
        then = _compile(node.get("then", True), defs)
        other = _compile(node.get("else", True), defs)
        return lambda v: then(v) if cond(v) else other(v)
    bound = arg
    if keyword == "minItems":
        return lambda v: type(v) is not list or len(v) >= bound
    if keyword == "minLength":
        return lambda v: type(v) is not str or len(v) >= bound
    if keyword == "minimum":
        return lambda v: not _is_number(v) or v >= bound
    if keyword == "exclusiveMinimum":
        return lambda v: not _is_number(v) or v > bound
    raise _Unsupported(keyword)


def _object(node: Mapping[str, Any], defs: dict[str, Check]) -> Check:
    props = {k: _compile(s, defs) for k, s in node.get("properties", {}).items()}
    patterns = [(re.compile(p), _compile(s, defs)) for p, s in node.get("patternProperties", {}).items()]
    extra = node.get("additionalProperties", True)
    extra_check = None if extra is True else _compile(extra, defs)
    required = tuple(node.get("required", ()))
    min_props = int(node.get("minProperties", 0))
    names = _compile(node["propertyNames"], defs) if "propertyNames" in node else None

    def check(v: Any) -> bool:
        if type(v) is not dict:
            return True
        for key, item in v.items():
            if names is not None and not names(key):
                return False
            prop = props.get(key)
            if prop is not None and not prop(item):
                return False
            matched = prop is not None
            for pattern, sub in patterns:
                if pattern.search(key):
                    matched = True
                    if not sub(item):
                        return False
            if not matched and extra_check is not None and not extra_check(item):
                return False
        return len(v) >= min_props and all(r in v for r in required)

    return check

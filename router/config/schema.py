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
import re
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from router.config.schemacheck import Check, Unsupported, compile_schema
from router.config.sources import Issues, Source, from_path, join

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

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
    try:
        return compile_schema(schema())
    except Unsupported:
        return None


def validate(
    data: Mapping[str, Any], source: Source, offsets: dict[str, int], issues: Issues
) -> None:
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
    arg: Any = error.validator_value
    value: Any = error.instance
    sub: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    noun = "section" if not pointer else "condition" if sub.get("title") == "condition" else "key"
    if keyword == "additionalProperties" and isinstance(value, Mapping):
        known = list(sub.get("properties", {}))
        patterns = [re.compile(p) for p in sub.get("patternProperties", {})]
        out = []
        for key in value:
            if key in known or any(p.search(key) for p in patterns):
                continue
            hint = _hint(key, known)
            if not hint and not pointer:
                hint = f" (sections are: {', '.join(known)})"
            message = f"unknown {noun} '{key}'{hint}"
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

"""`when:` conditions, compiled once at load into plain predicates.

A compiled condition is a function of the request (and the use case the engine
settled on) returning bool. Nothing is parsed per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from router.config.patterns import compile_pattern
from router.types import Request

Predicate = Callable[[Request, "str | None"], bool]

_COMPARE: Mapping[str, Callable[[int, float], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


def words_pattern(words: Sequence[str]) -> re.Pattern[str]:
    """Any of `words` as a whole word or phrase, case-insensitive."""
    alternatives = "|".join(re.escape(str(w)) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _use_case(value: Any) -> Predicate:
    wanted = frozenset(str(v) for v in _as_list(value))
    return lambda req, uc: uc in wanted


def _tokens(value: Mapping[str, float]) -> Predicate:
    checks = [(_COMPARE[op], float(bound)) for op, bound in value.items()]
    if len(checks) == 1:
        cmp, bound = checks[0]
        return lambda req, uc: cmp(req.tokens, bound)
    return lambda req, uc: all(cmp(req.tokens, bound) for cmp, bound in checks)


def _matches(value: str) -> Predicate:
    search = compile_pattern(value).search  # linear-time (RE2) or time-limited
    return lambda req, uc: search(req.text)


def _contains(value: Any) -> Predicate:
    search = words_pattern(_as_list(value)).search
    return lambda req, uc: search(req.text) is not None


def _tags(value: Any) -> Predicate:
    wanted = frozenset(str(v) for v in _as_list(value))
    return lambda req, uc: wanted <= req.tags


def _metadata(value: Mapping[str, Any]) -> Predicate:
    items = tuple(value.items())
    missing = object()
    return lambda req, uc: all(req.metadata.get(k, missing) == v for k, v in items)


def _any(value: Sequence[Mapping[str, Any]]) -> Predicate:
    parts = tuple(compile_condition(v) for v in value)
    return lambda req, uc: any(p(req, uc) for p in parts)


def _all(value: Sequence[Mapping[str, Any]]) -> Predicate:
    parts = tuple(compile_condition(v) for v in value)
    return lambda req, uc: all(p(req, uc) for p in parts)


def _not(value: Mapping[str, Any]) -> Predicate:
    inner = compile_condition(value)
    return lambda req, uc: not inner(req, uc)


# The registry of condition keys; the schema lists the same names.
CONDITIONS: Mapping[str, Callable[[Any], Predicate]] = {
    "use_case": _use_case,
    "tokens": _tokens,
    "matches": _matches,
    "contains": _contains,
    "tags": _tags,
    "metadata": _metadata,
    "any": _any,
    "all": _all,
    "not": _not,
}


def compile_condition(when: Mapping[str, Any] | None) -> Predicate:
    """Compile a `when:` mapping; several keys must all hold."""
    if not when:
        return lambda req, uc: True
    parts = []
    for key, value in when.items():
        try:
            factory = CONDITIONS[key]
        except KeyError:
            raise ValueError(f"unknown condition {key!r}") from None
        parts.append(factory(value))
    if len(parts) == 1:
        return parts[0]
    chain = tuple(parts)
    return lambda req, uc: all(p(req, uc) for p in chain)


def indexed_use_cases(when: Mapping[str, Any] | None) -> frozenset[str] | None:
    """The use cases a rule is limited to, when its top level says so (for the index)."""
    if not when or "use_case" not in when:
        return None
    return frozenset(str(v) for v in _as_list(when["use_case"]))

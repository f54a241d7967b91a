"""Requests read back from the request log, as the engine's `Request` again.

A logged line holds a request's features, not (unless `log_text: true`) its words.
Without the text, conditions on it (`matches`, `contains`, use-case detectors) have
nothing to look at, so such a request keeps the use case it was routed with then;
the report counts these requests so nobody mistakes the result for more than it is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from router.engine.tokens import message_text
from router.types import Request

LogSource = str | os.PathLike[str] | Iterable[Any]


@dataclass(slots=True)
class LoggedRequest:
    """One line of the log: the request to route again and what happened then."""

    line: int  # 1-based, over all files read
    request: Request
    has_text: bool
    rule: str | None
    model: str | None  # the model decided on (a fallback may have served)
    served: bool
    input_tokens: int  # as billed when served, else the estimate
    output_tokens: int  # as billed when served, else the output asked for
    cost_usd: float
    outcome: str
    use_case: str | None  # as routed: given, or detected then


_EMPTY_MESSAGES: tuple[dict[str, Any], ...] = ({"role": "user", "content": ""},)
_NONE: frozenset[str] = frozenset()
_NO_MAP: Mapping[str, Any] = MappingProxyType({})


def to_logged(rec: Mapping[str, Any], line: int) -> LoggedRequest:
    """Raises KeyError / TypeError / ValueError for a line that is not a request.

    Runs once per logged line (tens of thousands a second): no copies it can avoid.
    """
    get = rec.get
    messages = get("messages")
    if messages:
        msgs = tuple(dict(m) for m in messages)
        text = ""
        for m in reversed(msgs):
            if m.get("role") == "user":
                text = message_text(m)[0]
                break
        use_case = get("use_case")
        metadata: Mapping[str, Any] = get("metadata") or _NO_MAP
    else:
        msgs = _EMPTY_MESSAGES
        text = ""
        # The words are gone, so detection cannot run again: keep the use case it had.
        use_case = get("use_case") or get("use_case_detected")
        keys = get("metadata_keys")
        metadata = dict.fromkeys(keys) if keys else _NO_MAP
    tokens = int(rec["tokens"])
    max_tokens = int(get("max_tokens") or 0)
    tags = get("tags")
    needs = get("needs")
    request = Request(
        msgs,
        text,
        use_case,
        frozenset(tags) if tags else _NONE,
        metadata,
        get("params") or _NO_MAP,
        tokens,
        max_tokens,
        frozenset(needs) if needs else _NONE,
    )
    outcome = get("outcome") or "ok"
    usage = get("usage")
    served = outcome == "ok"
    if served and usage:
        tin, tout = int(usage["input_tokens"]), int(usage["output_tokens"])
    else:
        tin, tout = tokens, max_tokens
    return LoggedRequest(
        line,
        request,
        bool(messages),
        get("rule"),
        get("model"),
        served,
        tin,
        tout,
        float(get("cost_usd") or 0.0),
        str(outcome),
        get("use_case_detected") or get("use_case"),
    )


@dataclass(slots=True)
class ReadStats:
    lines: int = 0
    unreadable: int = 0
    first_error: str | None = None


def read_log(source: LogSource, stats: ReadStats) -> Iterator[LoggedRequest]:
    """Logged requests from a path, several paths, or records already parsed."""
    if isinstance(source, (str, os.PathLike)):
        sources: Iterable[Any] = [source]
    else:
        sources = source
    loads = json.loads
    for item in sources:
        if not isinstance(item, (str, os.PathLike)):
            stats.lines += 1
            got = _take(item, stats, None)
            if got is not None:
                yield got
            continue
        name = os.fspath(item)
        with open(item, encoding="utf-8") as fh:
            for raw in fh:
                stats.lines += 1
                try:
                    rec = loads(raw)
                except json.JSONDecodeError as exc:
                    if raw.strip():
                        _bad(stats, f"{name}:{stats.lines}: not JSON ({exc.msg})")
                    else:
                        stats.lines -= 1  # a blank line is no request
                    continue
                got = _take(rec, stats, name)
                if got is not None:
                    yield got


def _take(rec: Any, stats: ReadStats, file: str | None) -> LoggedRequest | None:
    if type(rec) is not dict and not isinstance(rec, Mapping):
        return _bad(stats, f"{_where(file, stats)}: not a JSON object")
    try:
        return to_logged(rec, stats.lines)
    except (KeyError, TypeError, ValueError) as exc:
        why = f"not a logged request ({type(exc).__name__}: {exc})"
        return _bad(stats, f"{_where(file, stats)}: {why}")


def _where(file: str | None, stats: ReadStats) -> str:
    """Made only for an error: most lines never need their name."""
    return f"record {stats.lines}" if file is None else f"{file}:{stats.lines}"


def _bad(stats: ReadStats, why: str) -> LoggedRequest | None:
    stats.unreadable += 1
    if stats.first_error is None:
        stats.first_error = why
    return None


__all__ = ["LogSource", "LoggedRequest", "ReadStats", "read_log", "to_logged"]

r"""Regexes written in configs (`matches:`), searched in time linear in the prompt.

A backtracking engine (Python's `re`) takes exponential time on patterns such as
`^(\w+\s?)*$` and a prompt that almost matches: 29 characters took 71 s. Prompts
come from users, so every `matches:` pattern runs on **RE2** (the `google-re2`
package): RE2 builds an automaton and never backtracks, so a search is linear in the
text whatever the pattern.

RE2 syntax is Python's minus what needs backtracking: backreferences (`\1`,
`(?P=name)`), lookaround (`(?=`, `(?!`, `(?<=`, `(?<!`), `\Z` (write `\z`), atomic and
possessive groups. Such a pattern is a `PatternError` at load (a ConfigError at its
line). The `regex` package's time limit was tried for them and cannot promise a
deadline: on nested quantifiers it overran its limit several times over, or never
stopped. `\w`, `\d`, `\s` and `\b` are ASCII in RE2 (`\pL`, `\pN` match other scripts).

Only where google-re2 cannot be installed (no wheel for the platform) do patterns run
on the `regex` package with a time limit per search (`MATCH_TIMEOUT`, best effort); a
search that runs out raises `PatternTimeout`, a `BadRequest` naming the pattern.
`contains:` word lists are escaped literals, built in `conditions`, and need neither.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from router.errors import BadRequest

MATCH_TIMEOUT = 0.05  # seconds per search on the fallback path


class PatternError(ValueError):
    """A pattern the engine refuses; `str` says why."""


class PatternTimeout(BadRequest):
    """A fallback-path search ran past MATCH_TIMEOUT on this prompt."""


class Pattern:
    """A compiled `matches:` pattern; `search(text)` says whether it is found."""

    __slots__ = ("engine", "search", "source")

    def __init__(self, source: str, engine: str, search: Callable[[str], bool]) -> None:
        self.source = source
        self.engine = engine  # "re2" | "bounded" | "re" (benchmark baselines only)
        self.search = search

    def __repr__(self) -> str:
        return f"Pattern({self.source!r}, engine={self.engine!r})"


@lru_cache(maxsize=1)
def _re2() -> Any:
    try:
        import re2
    except ImportError:
        return None
    options = re2.Options()
    options.log_errors = False  # RE2 would print each refusal to stderr
    options.never_capture = True  # a yes/no search needs no groups
    return re2, options


def compile_pattern(source: str, engine: str | None = None) -> Pattern:
    """The pattern on RE2 (on the time-limited engine if google-re2 is missing).

    PatternError if the engine refuses it. `engine="re"` builds an unbounded Python `re`
    pattern and `engine="bounded"` the time-limited one: for benchmarks and tests.
    """
    if engine == "re":
        found = re.compile(source).search
        return Pattern(source, "re", lambda text: found(text) is not None)
    loaded = _re2() if engine != "bounded" else None
    if loaded is None:
        return _bounded(source)
    re2, options = loaded
    try:
        compiled = re2.compile(source, options)
    except re2.error as exc:
        _check_syntax(source)  # a plain syntax error is reported as such
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(
            f"RE2 cannot run this pattern ({reason}); patterns run on RE2 so that no prompt "
            "can make matching take exponential time: lookaround, backreferences and \\Z "
            "are not supported"
        ) from None
    return Pattern(source, "re2", _re2_search(re2, compiled))


# The last text searched and its UTF-8 bytes: a request's text is searched by several
# patterns in a row, and encoding it once is most of the cost of a search.
_last_text: tuple[str, bytes] = ("", b"")


def _encoded(text: str) -> bytes:
    global _last_text
    last = _last_text
    if last[0] is text:
        return last[1]
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate is no crash
    _last_text = (text, data)
    return data


def _re2_search(re2: Any, compiled: Any) -> Callable[[str], bool]:
    """A yes/no search straight on the RE2 object, without the wrapper's match objects."""
    raw = getattr(compiled, "_regexp", None)
    anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    if raw is None or anchor is None:  # another google-re2 layout: its public search
        rsearch = compiled.search
        return lambda text: rsearch(text) is not None
    match = raw.Match

    def search(text: str) -> bool:
        data = _encoded(text)
        return bool(match(anchor, data, 0, len(data))[0][0] != -1)

    return search


def _check_syntax(source: str) -> None:
    try:
        re.compile(source)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise PatternError(f"invalid regular expression: {exc.msg}{where}") from None
    except (ValueError, OverflowError, RecursionError) as exc:
        raise PatternError(f"invalid regular expression: {exc}") from None


def _bounded(source: str) -> Pattern:
    import regex

    try:
        compiled = regex.compile(source, regex.VERSION0)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise PatternError(f"invalid regular expression: {exc}") from None
    bsearch = compiled.search

    def search(text: str) -> bool:
        try:
            return bsearch(text, timeout=MATCH_TIMEOUT) is not None
        except TimeoutError:
            raise PatternTimeout(
                f"pattern {source!r} took more than {MATCH_TIMEOUT * 1000:.0f} ms on this "
                "prompt (google-re2 is not installed, so it runs on the time-limited engine)"
            ) from None

    return Pattern(source, "bounded", search)


def check_pattern(source: str) -> None:
    """PatternError (with words) when `source` would not compile at load."""
    compile_pattern(source)


__all__ = [
    "MATCH_TIMEOUT",
    "Pattern",
    "PatternError",
    "PatternTimeout",
    "check_pattern",
    "compile_pattern",
]

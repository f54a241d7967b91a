"""Where things are: the files read, key paths (pointers) and the issues found.

A pointer names a value by its key path, the way a reader would write it:
`rules[2].targets[0]`, `providers.openai.api_key`, `models["llama3.1"].context`
(keys holding dots, brackets, quotes or spaces are written as JSON strings in brackets).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from router.errors import ConfigIssue
from router.secrets import redact

Pos = tuple[int, int]  # 1-based line and column
_MASK_MIN = 6  # shorter values from the environment (a port, a count) are not credentials

_PLAIN_KEY = re.compile(r"[^.\[\]\"\s]+")


def is_plain_key(key: str) -> bool:
    return _PLAIN_KEY.fullmatch(key) is not None


def join(pointer: str, key: str) -> str:
    """The pointer of `key` inside the mapping at `pointer`."""
    if _PLAIN_KEY.fullmatch(key):
        return f"{pointer}.{key}" if pointer else key
    return f"{pointer}[{json.dumps(key)}]"


def index(pointer: str, i: int) -> str:
    return f"{pointer}[{i}]"


def parent(pointer: str) -> str:
    """The pointer one level up; "" above a top-level key."""
    if pointer.endswith('"]'):
        start = pointer.rfind('["')
        while start > 0:
            try:
                json.loads(pointer[start + 1 : -1])
                break
            except ValueError:
                start = pointer.rfind('["', 0, start)
        return pointer[: max(start, 0)]
    if pointer.endswith("]"):
        return pointer[: pointer.rfind("[")]
    return pointer[: max(pointer.rfind("."), 0)]


def from_path(path: Iterable[str | int], offsets: dict[str, int] | None = None) -> str:
    """A pointer from a path of keys and indexes (as jsonschema gives them)."""
    pointer = ""
    for depth, part in enumerate(path):
        if isinstance(part, int):
            if depth == 1 and offsets:
                part += offsets.get(pointer, 0)
            pointer = index(pointer, part)
        else:
            pointer = join(pointer, str(part))
    return pointer


@dataclass(slots=True, eq=False)
class Source:
    """One file read: how it is named in errors and where each key path was written."""

    label: str  # the path as errors show it
    abspath: str
    positions: dict[str, Pos] = field(default_factory=dict)


class Issues:
    """Every problem found while loading, kept in reading order."""

    def __init__(self, sources: Sequence[Source]) -> None:
        self._sources = sources
        self._items: list[tuple[int, int, int, bool, ConfigIssue]] = []
        self.poisoned: set[str] = set()  # pointers whose value is already reported as bad
        self.secrets: set[str] = set()  # values that must never appear in a message
        self._environ: dict[str, str] = {}  # a value read from the environment -> ${NAME}
        # A file could not be read or parsed: checks across files would only add noise.
        self.incomplete = False

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(
        self,
        message: str,
        source: Source | None,
        pos: Pos | None,
        pointer: str,
        *,
        cause: bool = False,
    ) -> None:
        """`cause`: this issue makes `pointer`'s value bad; later echoes of it are dropped."""
        order = self._sources.index(source) if source in self._sources else len(self._sources)
        line, column = pos if pos else (None, None)
        issue = ConfigIssue(message, source.label if source else None, line, column, pointer)
        self._items.append((order, line or 0, column or 0, cause, issue))
        if cause:
            self.poisoned.add(pointer)

    def from_environ(self, name: str, value: str) -> None:
        """An error quoting `value` shows `${name}` instead: it may be a credential."""
        if len(value) >= _MASK_MIN:
            self._environ.setdefault(value, f"${{{name}}}")

    def at(self, pointer: str, message: str, source: Source | None = None) -> None:
        """Report at the place `pointer` was written (in `source`, else the first file)."""
        found, pos = locate(self._sources, pointer, source)
        self.add(message, found, pos, pointer)

    def result(self) -> tuple[ConfigIssue, ...]:
        """The issues, sorted by file and line, with secrets masked and echoes dropped."""
        out = []
        for *_, cause, issue in sorted(self._items, key=lambda t: t[:3]):
            if not cause and self._echo(issue.pointer):
                continue
            message = issue.message
            for value in sorted(self._environ, key=len, reverse=True):
                message = message.replace(value, self._environ[value])
            message = redact(message, self.secrets)
            if message != issue.message:
                issue = ConfigIssue(message, issue.file, issue.line, issue.column, issue.pointer)
            out.append(issue)
        return tuple(out)

    def _echo(self, pointer: str) -> bool:
        """Whether `pointer` is, or is inside, a value already reported as bad."""
        while pointer:
            if pointer in self.poisoned:
                return True
            pointer = parent(pointer)
        return False


def unset_message(name: str) -> str:
    return f"environment variable {name} is not set (write ${{{name}:-default}} to give a default)"


def locate(
    sources: Sequence[Source], pointer: str, prefer: Source | None = None
) -> tuple[Source | None, Pos | None]:
    """The file and position of `pointer`, or of its nearest written ancestor."""
    order = list(sources)
    if prefer is not None and prefer in order:
        order.remove(prefer)
        order.insert(0, prefer)
    p = pointer
    while True:
        for src in order:
            pos = src.positions.get(p)
            if pos is not None:
                return src, pos
        if not p:
            return (order[0] if order else None), None
        p = parent(p)

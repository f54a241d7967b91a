"""YAML to plain values, keeping where every key was written.

The file is composed (not loaded) so each node keeps its start mark; one pass then
turns nodes into dicts, lists and scalars, records `pointer -> (line, column)` and
interpolates `${VAR}` in string values. libyaml is used when PyYAML was built with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from router.config.interpolate import interpolate
from router.config.sources import Issues, Pos, Source, index, join, unset_message

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
}
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_SECTION_NOUN = {"providers": "provider", "models": "model", "use_cases": "use case"}
LIST_SECTIONS = ("rules", "tests", "budgets")

# Keys whose string values are credentials (in providers and models).
SECRET_KEY = re.compile(
    r"(?i)(?:^|[_-])(?:api[_-]?key|secret(?:[_-]?(?:access[_-]?)?key)?|password|passwd"
    r"|authorization|token)$"
)


class _Drop:
    """A value left out: its variable is unset inside a provider (which is disabled)."""


DROP = _Drop()


def compose(text: str, source: Source, issues: Issues) -> Node | None:
    """The node tree of one YAML document; None for an empty file or a syntax error."""
    try:
        return yaml.compose(text, Loader=_Loader)  # type: ignore[no-any-return]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos: Pos | None = (mark.line + 1, mark.column + 1) if mark else None
        what = exc.problem or "invalid syntax"
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            what = f"{what} ({exc.context} at line {exc.context_mark.line + 1})"
        issues.add(f"invalid YAML: {what}", source, pos, "")
    except yaml.YAMLError as exc:  # a reader error: a character YAML does not allow
        issues.add(f"invalid YAML: {_reader_problem(exc)}", source, None, "")
    return None


def _reader_problem(exc: yaml.YAMLError) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason) if reason else type(exc).__name__


class Converter:
    """Turns one file's nodes into plain values, recording positions in `source`."""

    def __init__(
        self,
        source: Source,
        environ: Mapping[str, str],
        offsets: Mapping[str, int],
        issues: Issues,
    ) -> None:
        self.source = source
        self.positions = source.positions
        self.environ = environ
        self.offsets = offsets  # list sections: items already read from earlier files
        self.issues = issues
        self.unset: dict[str, str] = {}  # provider -> first unset variable in its fields
        self._provider: str | None = None
        self._secret_scope = False
        self._active: set[int] = set()
        self._ctor = yaml.constructor.SafeConstructor()
        self._resolver = yaml.resolver.Resolver()

    def _report(self, node: Node, pointer: str, message: str) -> None:
        mark = node.start_mark
        self.issues.add(message, self.source, (mark.line + 1, mark.column + 1), pointer)

    def root(self, node: Node | None) -> dict[str, Any]:
        """The file's top-level sections."""
        if node is None:
            return {}
        if type(node) is not MappingNode:
            self._report(node, "", "the top level must be a mapping of sections (rules: ...)")
            return {}
        out: dict[str, Any] = {}
        for key, vnode in self._pairs(node, ""):
            pointer = key
            self._secret_scope = key in ("providers", "models")
            if key in LIST_SECTIONS and type(vnode) is SequenceNode:
                value: Any = self._sequence(vnode, pointer, self.offsets.get(key, 0))
            elif key in _SECTION_NOUN and type(vnode) is MappingNode:
                value = self._section(vnode, pointer, key)
            else:
                value = self.value(vnode, pointer)
            self._secret_scope = False
            out[key] = value
        return out

    def _section(self, node: MappingNode, pointer: str, key: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, vnode in self._pairs(node, pointer, _SECTION_NOUN[key]):
            child = join(pointer, name)
            self._provider = name if key == "providers" else None
            value = self.value(vnode, child)
            if value is not DROP:
                out[name] = value
        self._provider = None
        return out

    def _pairs(
        self, node: MappingNode, pointer: str, noun: str | None = None
    ) -> list[tuple[str, Node]]:
        """Key/value nodes with merge keys (<<) applied; records each key's position."""
        pairs: dict[str, tuple[str, Node]] = {}
        seen: dict[str, int] = {}
        explicit: list[tuple[ScalarNode, Node]] = []
        for knode, vnode in node.value:
            if knode.tag == _MERGE:
                for merged in self._merged(vnode, pointer):
                    for mk, mv in merged.value:
                        if type(mk) is ScalarNode and mk.tag != _MERGE:
                            pairs.setdefault(mk.value, (mk.value, mv))
                            self._mark(join(pointer, mk.value), mk)
            elif type(knode) is ScalarNode:
                explicit.append((knode, vnode))
            else:
                self._report(knode, pointer, "a key must be a plain string")
        for knode, vnode in explicit:
            key = knode.value
            line = knode.start_mark.line + 1
            if key in seen:
                what = f"duplicate {noun} '{key}'" if noun else f"duplicate key '{key}'"
                self._report(knode, join(pointer, key), f"{what} (first defined at line {seen[key]})")
                continue
            seen[key] = line
            pairs[key] = (key, vnode)
            self._mark(join(pointer, key), knode)
        return list(pairs.values())

    def _merged(self, node: Node, pointer: str) -> list[MappingNode]:
        if type(node) is MappingNode:
            return [node]
        if type(node) is SequenceNode and all(type(n) is MappingNode for n in node.value):
            return list(node.value)
        self._report(node, pointer, "a merge key (<<) needs a mapping or a list of mappings")
        return []

    def _mark(self, pointer: str, node: Node) -> None:
        mark = node.start_mark
        self.positions[pointer] = (mark.line + 1, mark.column + 1)

    def value(self, node: Node, pointer: str) -> Any:
        cls = type(node)
        if cls is ScalarNode:
            tag = node.tag
            if tag == _STR:
                text: str = node.value
                if "${" in text:
                    return self._interpolate(node, text, pointer)
                return text
            return self._scalar(node, pointer)
        if node.tag not in (_MAP, _SEQ):
            self._report(node, pointer, f"unsupported YAML tag {node.tag}")
        key = id(node)
        if key in self._active:
            self._report(node, pointer, "an alias refers to itself")
            return None
        self._active.add(key)
        try:
            if cls is MappingNode:
                return self._mapping(node, pointer)
            return self._sequence(node, pointer, 0)
        finally:
            self._active.discard(key)

    def _mapping(self, node: MappingNode, pointer: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        secret_scope = self._secret_scope
        for key, vnode in self._pairs(node, pointer):
            child = join(pointer, key)
            value = self.value(vnode, child)
            if value is DROP:
                continue
            if secret_scope and type(value) is str and value and SECRET_KEY.search(key):
                self.issues.secrets.add(value)
            out[key] = value
        return out

    def _sequence(self, node: SequenceNode, pointer: str, offset: int) -> list[Any]:
        out = []
        for i, item in enumerate(node.value, offset):
            child = index(pointer, i)
            mark = item.start_mark
            self.positions[child] = (mark.line + 1, mark.column + 1)
            value = self.value(item, child)
            if value is not DROP:
                out.append(value)
        return out

    def _scalar(self, node: ScalarNode, pointer: str) -> Any:
        tag = node.tag
        if tag in _PLAIN_TAGS:
            return self._ctor.yaml_constructors[tag](self._ctor, node)
        if tag == _TIMESTAMP:
            return node.value  # a date stays the text written: metadata compares strings
        self._report(node, pointer, f"unsupported YAML tag {tag}")
        return node.value

    def _interpolate(self, node: ScalarNode, text: str, pointer: str) -> Any:
        done = interpolate(text, self.environ)
        for problem in done.errors:
            self._report(node, pointer, problem)
            self.issues.poisoned.add(pointer)
        if done.missing:
            if self._provider is not None:
                self.unset.setdefault(self._provider, done.missing[0])
                return DROP
            for name in dict.fromkeys(done.missing):
                self._report(node, pointer, unset_message(name))
            self.issues.poisoned.add(pointer)
            return text
        if done.errors:
            return text
        value = done.value
        if node.style is None and done.substituted:
            # An unquoted `${PORT}` reads as the number it holds, as if written in place.
            tag = self._resolver.resolve(ScalarNode, value, (True, False))
            if tag in _PLAIN_TAGS:
                return self._ctor.yaml_constructors[tag](self._ctor, ScalarNode(tag, value))
        return value

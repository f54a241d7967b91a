"""YAML to plain values, keeping where every key was written.

The file is composed (not loaded) so each node keeps its start mark; one pass then
turns nodes into dicts, lists and scalars, records `pointer -> (line, column)` and
interpolates `${VAR}` in string values. libyaml is used when PyYAML was built with it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from router.config.interpolate import interpolate
from router.config.limits import DEFAULT_MAX_ALIAS_NODES
from router.config.sources import Issues, Pos, Source, is_plain_key, join, unset_message
from router.secrets import url_secrets

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

# The implicit resolvers of a safe loader, by the first character they can match; `=` and
# `!` stay strings (PyYAML would tag them and then fail to construct them).
_IMPLICIT: dict[str, list[tuple[str, re.Pattern[str]]]] = {
    str(k): [(t, p) for t, p in v if t in _PLAIN_TAGS or t in (_MERGE, _TIMESTAMP)]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    if k is not None
}


_TAGS: dict[str, str] = {}  # plain scalar -> tag; keys and names repeat a lot


def _resolve(value: str) -> str:
    """The tag of a plain scalar (what yaml's Resolver.resolve does, minus its overhead)."""
    tag = _TAGS.get(value)
    if tag is not None:
        return tag
    tag = _STR
    for candidate, pattern in _IMPLICIT.get(value[:1], ()):
        if pattern.match(value):
            tag = candidate
            break
    if len(_TAGS) > 50_000:
        _TAGS.clear()
    _TAGS[value] = tag
    return tag


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader, resolving tags faster: composing calls this for every node.

    Path resolvers are not used, so descending and ascending have nothing to track.
    """

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            return _resolve(value) if implicit[0] else _STR
        return _SEQ if kind is SequenceNode else _MAP

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass


# Keys whose string values are credentials (in providers and models).
SECRET_KEY = re.compile(
    r"(?i)(?:^|[_-])(?:api[_-]?key|secret(?:[_-]?(?:access[_-]?)?key)?|password|passwd"
    r"|authorization|token)$"
)


_is_plain = functools.lru_cache(maxsize=8192)(is_plain_key)


@functools.lru_cache(maxsize=1024)
def _is_secret(key: str) -> bool:
    return SECRET_KEY.search(key) is not None


class _Drop:
    """A value left out: its variable is unset inside a provider (which is disabled)."""


DROP = _Drop()


def compose(
    text: str, source: Source, issues: Issues, max_alias_nodes: int = DEFAULT_MAX_ALIAS_NODES
) -> Node | None:
    """The node tree of one YAML document; None for an empty file or a syntax error.

    Aliases are checked first (`check_aliases`): nothing is composed from a file whose
    aliases would expand past `max_alias_nodes` or refer to themselves.
    """
    try:
        if "&" in text and "*" in text and not check_aliases(text, source, issues, max_alias_nodes):
            issues.incomplete = True
            return None
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos: Pos | None = (mark.line + 1, mark.column + 1) if mark else None
        what = exc.problem or "invalid syntax"
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            what = f"{what} ({exc.context} at line {exc.context_mark.line + 1})"
        issues.add(f"invalid YAML: {what}", source, pos, "")
    except yaml.YAMLError as exc:  # a reader error: a character YAML does not allow
        at = getattr(exc, "position", None)
        pos = (text.count("\n", 0, at) + 1, 1) if isinstance(at, int) else None
        issues.add(f"invalid YAML: {_reader_problem(exc)}", source, pos, "")
    issues.incomplete = True
    return None


def check_aliases(text: str, source: Source, issues: Issues, max_nodes: int) -> bool:
    """Whether the file's aliases are safe to expand; else an issue at the alias's line.

    One pass over the parser's events (no nodes are built): the size of each anchored
    node, counted with the aliases inside it expanded, is known when the node ends, and
    every alias adds the size of its anchor. A billion-laughs file of a few hundred
    bytes is stopped at the alias that crosses `max_nodes`, not after gigabytes.
    An alias inside its own anchor (a node containing itself) is reported too.
    """
    sizes: dict[str, int] = {}
    open_anchors: list[tuple[str | None, int]] = []  # (anchor, total at the node's start)
    total = 0  # nodes so far, aliases expanded
    added = 0  # nodes added by aliases
    for event in yaml.parse(text, Loader=_Loader):
        kind = type(event)
        name: str | None = getattr(event, "anchor", None)
        if kind is yaml.ScalarEvent:
            total += 1
            if name is not None:
                sizes[name] = 1
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            open_anchors.append((name, total))
            total += 1
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            anchor, start = open_anchors.pop()
            if anchor is not None:
                sizes[anchor] = total - start
        elif kind is yaml.AliasEvent:
            mark = event.start_mark
            pos = (mark.line + 1, mark.column + 1) if mark else None
            if any(a == name for a, _ in open_anchors):
                issues.add(
                    f"alias *{name} is inside its own anchor &{name}: "
                    "a value cannot contain itself",
                    source,
                    pos,
                    "",
                )
                return False
            size = sizes.get(name or "", 1)  # an undefined alias: compose reports it
            total += size
            added += size
            if added > max_nodes:
                issues.add(
                    f"aliases expand to more than {max_nodes:,} nodes (at *{name}); "
                    "the limit is ROUTER_MAX_ALIAS_NODES",
                    source,
                    pos,
                    "",
                )
                return False
    return True


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
        self._secret_names: frozenset[str] = frozenset()  # more credential keys in scope
        self._in_secret = False  # converting the value of a credential key
        self._ctor = yaml.constructor.SafeConstructor()

    def _report(self, node: Node, pointer: str, message: str, *, cause: bool = False) -> None:
        mark = node.start_mark
        pos = (mark.line + 1, mark.column + 1)
        self.issues.add(message, self.source, pos, pointer, cause=cause)

    def root(self, node: Node | None) -> dict[str, Any]:
        """The file's top-level sections."""
        if node is None:
            return {}
        if type(node) is not MappingNode:
            self._report(node, "", "the top level must be a mapping of sections (rules: ...)")
            self.issues.incomplete = True
            return {}
        try:
            return self._mapping(node, "", section="")
        except RecursionError:
            self._report(node, "", "nested too deeply (does an alias contain itself?)")
            self.issues.incomplete = True
            return {}

    def value(self, node: Node, pointer: str) -> Any:
        if type(node) is ScalarNode:
            if node.tag == _STR:
                text: str = node.value
                return self._interpolate(node, text, pointer) if "${" in text else text
            return self._scalar(node, pointer)
        if node.tag != _MAP and node.tag != _SEQ:
            self._report(node, pointer, f"unsupported YAML tag {node.tag}", cause=True)
        if type(node) is MappingNode:
            return self._mapping(node, pointer)
        if type(node) is SequenceNode:
            return self._sequence(node, pointer, 0)
        return None

    def _mapping(
        self, node: MappingNode, pointer: str, section: str | None = None
    ) -> dict[str, Any]:
        """`section` is "" for the top level and a section's name for its entries."""
        out: dict[str, Any] = {}
        positions = self.positions
        prefix = pointer + "." if pointer else ""
        merges: list[Node] = []
        for knode, vnode in node.value:
            if knode.tag == _MERGE:
                merges.append(vnode)
                continue
            if type(knode) is not ScalarNode:
                self._report(knode, pointer, "a key must be a plain string")
                continue
            key: str = knode.value
            child = prefix + key if _is_plain(key) else join(pointer, key)
            if child in positions:  # written before in this mapping (or kept by a merge)
                self._duplicate(knode, child, key, section)
                continue
            mark = knode.start_mark
            positions[child] = (mark.line + 1, mark.column + 1)
            value = self._keyed(section, key, vnode, child)
            if value is not DROP:
                out[key] = value
        if merges:
            self._merge_keys(out, merges, pointer, section)
        return out

    def _keyed(self, section: str | None, key: str, node: Node, pointer: str) -> Any:
        """The value of `key` in a mapping; a credential's value is noted for masking."""
        if section is not None:
            return self._entry(section, key, node, pointer)
        if not self._secret_scope or not (_is_secret(key) or key in self._secret_names):
            value = self.value(node, pointer)
            if self._secret_scope and type(value) is str and "://" in value:
                self.issues.secrets.update(url_secrets(value))  # http://user:KEY@host
            return value
        outer, self._in_secret = self._in_secret, True
        try:
            value = self.value(node, pointer)
        finally:
            self._in_secret = outer
        if type(value) is str and value:
            self.issues.secrets.add(value)
        elif type(value) is int or type(value) is float:
            # `api_key: 123456789` is a number: a type error would quote it.
            self.issues.secrets.add(str(value))
            if type(node) is ScalarNode:
                self.issues.secrets.add(node.value)
        return value

    def _entry(self, section: str, key: str, node: Node, pointer: str) -> Any:
        """A top-level section, or one entry of providers / models / use_cases."""
        if section:
            self._provider = key if section == "providers" else None
            try:
                return self.value(node, pointer)
            finally:
                self._provider = None
        self._secret_scope = key in ("providers", "models", "server")
        # `server.keys[].key` is the API key clients send.
        self._secret_names = frozenset({"key"}) if key == "server" else frozenset()
        try:
            if key in LIST_SECTIONS and type(node) is SequenceNode:
                return self._sequence(node, pointer, self.offsets.get(key, 0))
            if key in _SECTION_NOUN and type(node) is MappingNode:
                return self._mapping(node, pointer, section=key)
            return self.value(node, pointer)
        finally:
            self._secret_scope = False

    def _duplicate(self, knode: Node, pointer: str, key: str, section: str | None) -> None:
        noun = "section" if section == "" else _SECTION_NOUN.get(section or "", "key")
        first = self.positions[pointer][0]
        self._report(knode, pointer, f"duplicate {noun} '{key}' (first defined at line {first})")

    def _merge_keys(
        self, out: dict[str, Any], merges: list[Node], pointer: str, section: str | None
    ) -> None:
        """YAML merge keys (`<<: *defaults`): fill in what the mapping does not set itself."""
        for merge in merges:
            if type(merge) is MappingNode:
                sources = [merge]
            elif type(merge) is SequenceNode and all(type(n) is MappingNode for n in merge.value):
                sources = list(merge.value)
            else:
                self._report(merge, pointer, "a merge key (<<) needs a mapping or a list of them")
                continue
            for mapping in sources:
                for knode, vnode in mapping.value:
                    if type(knode) is not ScalarNode or knode.tag == _MERGE:
                        continue
                    key = knode.value
                    child = join(pointer, key)
                    if child in self.positions:
                        continue
                    mark = knode.start_mark
                    self.positions[child] = (mark.line + 1, mark.column + 1)
                    value = self._keyed(section, key, vnode, child)
                    if value is not DROP:
                        out[key] = value

    def _sequence(self, node: SequenceNode, pointer: str, offset: int) -> list[Any]:
        out = []
        positions = self.positions
        convert = self.value
        for i, item in enumerate(node.value, offset):
            child = f"{pointer}[{i}]"
            mark = item.start_mark
            positions[child] = (mark.line + 1, mark.column + 1)
            value = convert(item, child)
            if value is not DROP:
                out.append(value)
        return out

    def _scalar(self, node: ScalarNode, pointer: str) -> Any:
        tag = node.tag
        if tag in _PLAIN_TAGS:
            try:
                value = self._ctor.yaml_constructors[tag](self._ctor, node)
            except (ValueError, IndexError, TypeError, yaml.YAMLError):
                # only an explicit tag gets here: `!!int soon`
                self._report(node, pointer, f"not a valid {tag.rsplit(':', 1)[-1]}", cause=True)
                return node.value
            return self._not_nan(value, node, pointer)
        if tag == _TIMESTAMP:
            return node.value  # a date stays the text written: metadata compares strings
        self._report(node, pointer, f"unsupported YAML tag {tag}", cause=True)
        return node.value

    def _interpolate(self, node: ScalarNode, text: str, pointer: str) -> Any:
        done = interpolate(text, self.environ)
        mark = node.start_mark
        pos = (mark.line + 1, mark.column + 1)
        for problem in done.errors:
            if self._in_secret:  # the reference would quote part of the credential
                problem = "bad variable reference: expected ${NAME} or ${NAME:-default}"
            self.issues.add(problem, self.source, pos, pointer, cause=True)
        if done.missing:
            if self._provider is not None:
                self.unset.setdefault(self._provider, done.missing[0])
                return DROP
            for name in dict.fromkeys(done.missing):
                self.issues.add(unset_message(name), self.source, pos, pointer, cause=True)
            return text
        if done.errors:
            return text
        for name, used in done.used:
            self.issues.from_environ(name, used)
        value = done.value
        if not node.style and done.substituted:  # plain: None (Python) or "" (libyaml)
            # An unquoted `${PORT}` reads as the number it holds, as if written in place.
            tag = _resolve(value)
            if tag in _PLAIN_TAGS:
                number = self._ctor.yaml_constructors[tag](self._ctor, ScalarNode(tag, value))
                return self._not_nan(number, node, pointer)
        return value

    def _not_nan(self, value: Any, node: ScalarNode, pointer: str) -> Any:
        # `.nan` passes every bound jsonschema checks (all comparisons are false), so it
        # would slip through as a weight, a price or a max_cost that filters nothing.
        if type(value) is float and value != value:
            self._report(node, pointer, "`.nan` is not a usable number", cause=True)
        return value

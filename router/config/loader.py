"""`load_config`: one YAML file or a directory of them, to a checked, frozen `Config`.

    files  ->  compose (line numbers)  ->  plain values + ${VAR}  ->  schema (per file)
           ->  merge by section        ->  semantic checks        ->  dataclasses

Every problem found on the way is collected; if there is any, one `ConfigError`
carries them all, each with file, line, column and key path.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router.config import schema, semantics, yamlsrc
from router.config.build import build
from router.config.limits import ReadLimits, RefusedFile, read_regular
from router.config.model import Config
from router.config.semantics import BudgetEntry, Merged
from router.config.sources import Issues, Source, index, join, locate
from router.errors import ConfigError, ConfigIssue

SUFFIXES = (".yaml", ".yml")


RUNTIME = "<runtime>"  # how errors name what add_provider()/add_model() wrote


@dataclass(frozen=True)
class Overlay:
    """Changes made at run time (`Router.add_provider()` ...), laid over the files.

    `removed` names are taken out of what the files define; `added` (providers and
    models) is then read as one more YAML document, named `<runtime>` in errors,
    through the same interpolation, schema and semantic checks as a file.
    """

    added: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    removed: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.added.values()) and not any(self.removed.values())


def load_config(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    overlay: Overlay | None = None,
    limits: ReadLimits | None = None,
) -> Config:
    """Read, check and build the config at `path` (a YAML file or a directory of them).

    A directory's `*.yaml` / `*.yml` files (not hidden ones, not subdirectories) are read in
    name order and merged section by section: rules, tests and budgets are concatenated,
    providers, models, use cases and settings merged by name (a name twice is an error).
    `${VAR}` and `${VAR:-default}` are read from `environ` (default: `os.environ`).
    `limits` bound the bytes read per file and the nodes YAML aliases may add (default:
    `ReadLimits.from_environ()`); a file past them is a ConfigError before anything is built.

    Raises ConfigError with every issue found.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    bounds = limits if limits is not None else ReadLimits.from_environ()
    label = os.fspath(path)
    files = _find_files(Path(label), label)
    sources: list[Source] = []
    issues = Issues(sources)
    digest = hashlib.sha256()
    merged = Merged()
    offsets: dict[str, int] = {}
    with _gc_paused():  # a config is many small objects: collections would only slow it down
        for shown, file in files:
            source = Source(shown, str(file.resolve()))
            sources.append(source)
            text = _read(file, source, issues, digest, bounds.max_bytes)
            if text is not None:
                _load_file(text, source, env, merged, sources, offsets, issues, bounds)
        if overlay is not None and not overlay.empty and not issues.incomplete:
            _apply_overlay(overlay, env, merged, sources, offsets, issues, digest, bounds)
        if not issues.incomplete:
            semantics.check(merged, sources, issues)
        if issues:
            raise ConfigError(issues.result())
        read = tuple(s.abspath for s in sources if s.abspath != RUNTIME)
        return build(merged, sources, read, digest.hexdigest())


def _load_file(
    text: str,
    source: Source,
    environ: Mapping[str, str],
    merged: Merged,
    sources: list[Source],
    offsets: dict[str, int],
    issues: Issues,
    limits: ReadLimits,
) -> None:
    # In a function of its own so the node tree is freed before the collector runs again.
    converter = yamlsrc.Converter(source, environ, offsets, issues)
    data = converter.root(yamlsrc.compose(text, source, issues, limits.max_alias_nodes))
    schema.validate(data, source, offsets, issues)
    _merge(merged, data, converter.unset, source, sources, offsets, issues)


def _apply_overlay(
    overlay: Overlay,
    environ: Mapping[str, str],
    merged: Merged,
    sources: list[Source],
    offsets: dict[str, int],
    issues: Issues,
    digest: Any,
    limits: ReadLimits,
) -> None:
    removed = {k: sorted(v) for k, v in overlay.removed.items() if v}
    digest.update(json.dumps(removed, sort_keys=True).encode())  # a removal is a change too
    for section in ("providers", "models"):
        target: dict[str, Any] = getattr(merged, section)
        for name in overlay.removed.get(section, ()):
            target.pop(name, None)  # gone from the files too: nothing left to remove
            if section == "providers":
                merged.unset.pop(name, None)
    added = {k: dict(v) for k, v in overlay.added.items() if v}
    if not added:
        return
    text = json.dumps(added, sort_keys=True)  # JSON is YAML: one reader for both
    digest.update(text.encode())
    source = Source(RUNTIME, RUNTIME)
    sources.append(source)
    _load_file(text, source, environ, merged, sources, offsets, issues, limits)


def _find_files(path: Path, label: str) -> list[tuple[str, Path]]:
    if path.is_dir():
        found = sorted(
            p
            for p in path.iterdir()
            if p.suffix in SUFFIXES and not p.name.startswith(".") and p.is_file()
        )
        if not found:
            raise ConfigError(f"no *.yaml or *.yml files in {label}", file=label)
        return [(os.path.join(label, p.name), p) for p in found]
    if not path.exists():
        raise ConfigError(f"config not found: {label}", file=label)
    return [(label, path)]


def _read(file: Path, source: Source, issues: Issues, digest: Any, max_bytes: int) -> str | None:
    try:
        data = read_regular(file, max_bytes)
    except RefusedFile as exc:
        issues.add(str(exc), source, None, "")
        issues.incomplete = True
        return None
    except OSError as exc:
        issues.add(f"cannot read the file: {exc.strerror or exc}", source, None, "")
        issues.incomplete = True
        return None
    digest.update(data)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        issues.add("the file is not UTF-8 text", source, (line, 1), "")
        issues.incomplete = True
        return None


def _merge(
    merged: Merged,
    data: Mapping[str, Any],
    unset: Mapping[str, str],
    source: Source,
    sources: list[Source],
    offsets: dict[str, int],
    issues: Issues,
) -> None:
    """Adds one file's sections to `merged`; advances `offsets` past its list items."""
    for section, noun in (
        ("providers", "provider"),
        ("models", "model"),
        ("use_cases", "use case"),
    ):
        target: dict[str, Any] = getattr(merged, section)
        entries = data.get(section)
        if not isinstance(entries, dict):
            continue
        for name, value in entries.items():
            pointer = join(section, name)
            if name in target:
                first, pos = locate(sources, pointer)
                where = f"{first.label}:{pos[0]}" if first and pos else "another file"
                issues.at(pointer, f"duplicate {noun} '{name}' (first defined at {where})", source)
                continue
            target[name] = value
            if section == "providers" and name in unset:
                merged.unset[name] = unset[name]
    for section in ("rules", "tests"):
        items = data.get(section)
        if isinstance(items, list):
            getattr(merged, section).extend(items)
            offsets[section] = offsets.get(section, 0) + len(items)
    _merge_budgets(merged, data.get("budgets"), source, offsets)
    for section in ("settings", "server"):
        values = data.get(section)
        if not isinstance(values, dict):
            continue
        target = getattr(merged, section)
        for key, value in values.items():
            pointer = join(section, key)
            if key in target:
                first, pos = locate(sources, pointer)
                where = f"{first.label}:{pos[0]}" if first and pos else "another file"
                issues.at(pointer, f"setting '{key}' is set twice (first at {where})", source)
            else:
                target[key] = value


def _merge_budgets(merged: Merged, budgets: Any, source: Source, offsets: dict[str, int]) -> None:
    """Both budget forms become entries {scope, name, daily, monthly}.

    budgets:                                  budgets:
      - {scope: global, daily: 5}               global: {daily: 5}
      - {scope: rule, name: coding, ...}        rules:  {coding: {monthly: 20}}
                                                models: {gpt-4o: {daily: 1}}
    """
    if isinstance(budgets, list):
        start = offsets.get("budgets", 0)
        for i, entry in enumerate(budgets, start):
            if isinstance(entry, dict):
                pointer = index("budgets", i)
                merged.budgets.append(BudgetEntry(pointer, entry, join(pointer, "name"), source))
        offsets["budgets"] = start + len(budgets)
    elif isinstance(budgets, dict):
        limits = budgets.get("global")
        if isinstance(limits, dict):
            pointer = "budgets.global"
            entry = {"scope": "global", **limits}
            merged.budgets.append(BudgetEntry(pointer, entry, pointer, source))
        for scope, key in (("rule", "rules"), ("model", "models")):
            named = budgets.get(key)
            if not isinstance(named, dict):
                continue
            for name, limits in named.items():
                if isinstance(limits, dict):
                    pointer = join(join("budgets", key), name)
                    entry = {"scope": scope, "name": name, **limits}
                    merged.budgets.append(BudgetEntry(pointer, entry, pointer, source))


_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic collector while loading; safe when loads overlap in threads."""
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


__all__ = ["RUNTIME", "ConfigError", "ConfigIssue", "Overlay", "ReadLimits", "load_config"]

"""`router validate [--strict] [--json] CONFIG...`: check configs, never "ok" before failing.

A folder that holds YAML files is one config (its files merged). A folder that holds
none of its own, such as `examples/`, holds alternatives: every YAML file below it is
validated on its own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from router import ConfigError, Router
from router import cli_json as jsondoc

SUFFIXES = (".yaml", ".yml")  # what a config folder's files end with


def targets(path: str) -> Iterator[str]:
    """The configs `path` stands for (see the module docstring)."""
    p = Path(path)
    if p.is_dir() and not any(c.suffix in SUFFIXES and c.is_file() for c in p.iterdir()):
        found = sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES and f.is_file())
        if found:
            yield from (str(f) for f in found)
            return
    yield path


def check(path: str, strict: bool) -> dict[str, Any]:
    """One config's report: the JSON document `validate --json` prints for it."""
    doc: dict[str, Any] = {"path": path, "ok": False, "disabled": {}, "warnings": [], "errors": []}
    try:
        r = Router.from_config(path)
    except ConfigError as exc:
        doc["errors"] = jsondoc.errors_doc(exc)
        return doc
    with r:
        cfg = r.config
        disabled = {n: p.disabled_reason for n, p in cfg.providers.items() if not p.enabled}
        doc.update(
            files=list(cfg.files),
            providers=len(cfg.providers),
            models=len(cfg.models),
            rules=len(cfg.rules),
            tests=len(cfg.tests),
            disabled=disabled,
            warnings=warnings(r),
            errors=call_errors(r),
        )
    if doc["errors"]:
        return doc
    if strict and disabled:
        doc["errors"] = [
            {
                "file": None,
                "line": None,
                "pointer": "",
                "message": f"--strict: provider {n} disabled: {why}",
            }
            for n, why in disabled.items()
        ]
        return doc
    doc["ok"] = True
    return doc


def warnings(r: Router) -> list[str]:
    """What will not stop the config from loading but will surprise its user."""
    return [str(f) for f in r.check()[1]]


def call_errors(r: Router) -> list[dict[str, Any]]:
    """Mistakes that load but break every call of a model."""
    return [
        {
            "file": f.model.where.file,
            "line": f.model.where.line,
            "pointer": f"models.{f.model.name}.model",
            "message": f.message,
        }
        for f in r.check()[0]
    ]


def validate_paths(
    paths: list[str], *, strict: bool, as_json: bool, fail: Callable[[str, int], int]
) -> int:
    docs = [check(t, strict) for path in paths for t in targets(path)]
    ok = all(d["ok"] for d in docs)
    if as_json:
        print(jsondoc.dumps(docs[0] if len(docs) == 1 else {"ok": ok, "configs": docs}))
        return 0 if ok else 2
    for d in docs:
        if not d["ok"]:
            head = f"{d['path']}: " if len(docs) > 1 else ""
            for e in d["errors"]:
                where = (
                    (e["file"] + (f":{e['line']}" if e["line"] else "") + ": ") if e["file"] else ""
                )
                pointer = f"{e['pointer']}: " if e["pointer"] else ""
                fail(f"{head}{where}{pointer}{e['message']}", 2)
            continue
        print(
            f"ok: {d['path'] + ': ' if len(docs) > 1 else ''}{len(d['files'])} file(s), "
            f"{d['providers']} providers, {d['models']} models, {d['rules']} rules, "
            f"{d['tests']} routing tests"
        )
        for name, why in d["disabled"].items():
            print(f"  provider {name} disabled: {why}")
        for w in d["warnings"]:
            print(f"router: warning: {w}", file=sys.stderr)
    return 0 if ok else 2


__all__ = ["check", "targets", "validate_paths"]

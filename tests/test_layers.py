"""DESIGN's import table, checked: every arrow between pieces of `router/` runs down.

Each import of `router.*` in the package (at the top, inside functions, under
TYPE_CHECKING alike) is an arrow from the importing piece to the imported one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import router

PACKAGE = Path(router.__file__).resolve().parent
BASE = {"errors", "types", "secrets"}  # the shared vocabulary: anyone may import it

# piece -> pieces it may import (besides itself and BASE). From DESIGN.md's table.
ALLOWED: dict[str, set[str]] = {
    "types": set(),
    "secrets": set(),
    "errors": {"types"},
    "config": set(),
    "engine": {"config"},
    # An adapter is built from its ProviderConfig and the Call it runs carries the
    # ModelConfig: providers read the config model, never the runtime.
    "providers": {"config", "engine"},
    "runtime.state": {"config"},
    "runtime.reload": {"config", "runtime", "runtime.state"},
    "runtime": {
        "config",
        "engine",
        "providers",
        "runtime.state",
        "runtime.reload",
        "cache",
        "observe",
        "replay",
    },
    # The response cache: keyed by the rule's config, answers as `Result`s.
    "cache": {"config"},
    # Request log, metrics, traces: observers of `RequestEnded` and `ReloadEvent`.
    "observe": {"config", "runtime.reload"},
    # Replay: logged requests decided again by the engine, on a snapshot of a config.
    "replay": {"config", "engine", "observe", "runtime"},
    "server": {"<root>"},
    # `router serve` (issue 10) starts the server: the one arrow into it.
    "cli": {"<root>", "commands", "server"},
    "commands": {"<root>"},  # the bodies of `router health | compare | batch | pull | rm`
    "testing": set(),
    # the facade: the public names, loaded lazily; `python -m router`
    # (`RouterMetrics` from observe: what the server mounts at /metrics)
    "<root>": {"config", "runtime", "runtime.state", "runtime.reload", "replay", "observe", "cli"},
}
NOBODY_IMPORTS = {"cli", "server"}  # except the package's own entry points


def piece(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "<root>"
    if parts[1] == "runtime" and len(parts) > 2 and parts[2] in ("state", "reload"):
        return f"runtime.{parts[2]}"
    if parts[1] in ("__init__", "__main__"):
        return "<root>"
    if parts[1].startswith("cli_"):  # the CLI's own modules (cli_json, cli_validate, ...)
        return "cli"
    return parts[1]


def module_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    base = PACKAGE.parent / rel
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield node.lineno, full if is_module(full) else node.module


def arrows() -> Iterator[tuple[str, int, str, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        src = piece(module_of(path))
        for line, target in imports(path):
            if target != "router" and not target.startswith("router."):
                continue
            yield f"{path.relative_to(PACKAGE.parent)}:{line}", src, target, piece(target)


def test_the_walk_finds_the_arrows_it_checks() -> None:
    found = {(src, dst) for _, src, _, dst in arrows()}
    assert ("runtime", "engine") in found
    assert ("engine", "config") in found
    assert ("runtime.state", "config") in found
    assert piece("router.runtime.state.live") == "runtime.state"
    assert piece("router.runtime.attempts") == "runtime"


def test_no_arrow_runs_up_the_import_table() -> None:
    wrong = []
    for where, src, target, dst in arrows():
        if dst == src or (dst in BASE and src not in {"types", "secrets"}):
            continue
        if src in ALLOWED and dst not in ALLOWED[src]:
            wrong.append(f"{where}: {src} imports {target} ({dst})")
        elif src not in ALLOWED:
            wrong.append(f"{where}: {src} is not in the import table")
    assert wrong == []


def test_nobody_imports_the_cli_or_the_server() -> None:
    wrong = [
        f"{where}: imports {target}"
        for where, src, target, dst in arrows()
        if dst in NOBODY_IMPORTS
        and src != dst
        and not where.startswith("router/__main__")
        and (src, dst) != ("cli", "server")  # `router serve`, the server's entry point
    ]
    assert wrong == []

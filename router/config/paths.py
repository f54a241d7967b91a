"""Where a local model's file is, and the one rule that keeps it inside `models_dir`.

A model id (`model: qwen.gguf`) or a `path:` setting written as an absolute path is the
config's own choice and is used as written. Anything else is relative to `models_dir`
*after* every expansion (`~`, `..`, symlinks): `~/../../tmp/x.gguf` expands to an
absolute path the config never wrote, so it must land inside `models_dir` like any
relative id. A path longer than the OS allows is a config error, not a model that is
"unavailable" and retried.

Used at load (semantic checks, so `router validate` catches it) and again per load of
a model (a symlink may have changed since).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODELS_DIR = "~/.cache/router/models"
MAX_PATH = 4096  # PATH_MAX on Linux
MAX_NAME = 255  # NAME_MAX: one component


class PathRefused(ValueError):
    """The model's path leaves `models_dir` or cannot be a path; `str` says how."""


def models_root(models_dir: str | None) -> Path:
    return Path(os.path.expanduser(models_dir or DEFAULT_MODELS_DIR))


def model_file(models_dir: str | None, written: str) -> Path:
    """The model file `written` names (a model id or a `path:`); PathRefused if it may not."""
    _check_length(written)
    if os.path.isabs(written):
        return Path(written).resolve()  # the config names it: trusted as written
    expanded = os.path.expanduser(written)
    _check_length(expanded)
    root = models_root(models_dir).resolve()
    try:
        path = (root / expanded).resolve()  # symlinks followed: a link out is caught too
    except (OSError, RuntimeError) as exc:  # ENAMETOOLONG, a symlink loop
        raise PathRefused(f"model path {written!r} cannot be resolved: {exc}") from None
    if not path.is_relative_to(root):
        raise PathRefused(f"model path {written!r} resolves to {path}, outside models_dir {root}")
    _check_length(str(path))
    return path


def _check_length(path: str) -> None:
    if "\x00" in path:
        raise PathRefused("model path contains a NUL character")
    if len(os.fsencode(path)) > MAX_PATH:
        raise PathRefused(f"model path is longer than {MAX_PATH} bytes")
    longest = max((len(os.fsencode(p)) for p in path.split(os.sep)), default=0)
    if longest > MAX_NAME:
        raise PathRefused(f"a component of the model path is longer than {MAX_NAME} bytes")


__all__ = ["DEFAULT_MODELS_DIR", "PathRefused", "model_file", "models_root"]

"""What `router run` / `router explain` were given: a config (optional) and a prompt.

    router run [CONFIG] [PROMPT | -]

CONFIG is optional: without it, `$ROUTER_CONFIG`, else `./router.yaml`, else the
default shipped in the package (what the module-level `route()` uses). The prompt is
read from stdin when it is `-`, or when it is left out and stdin is not a terminal
(`echo text | router run`). A lone argument is the config when it names an existing
YAML file or directory, else the prompt. An empty prompt is an error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from router import default_config_path

CONFIG_SUFFIXES = (".yaml", ".yml")


class InputError(Exception):
    """The command line or stdin did not give a usable config and prompt."""


def _is_config(arg: str) -> bool:
    path = Path(arg)
    return path.suffix in CONFIG_SUFFIXES or (path.is_dir() and arg not in ("-", ""))


def config_and_prompt(args: list[str], stdin: TextIO | None = None) -> tuple[str, str]:
    """(config path, prompt) from the positional arguments and, where asked, stdin."""
    stdin = sys.stdin if stdin is None else stdin
    if len(args) > 2:
        raise InputError(
            f"expected [CONFIG] PROMPT, got {len(args)} arguments (quote a prompt with spaces)"
        )
    config: str | None = None
    prompt: str | None = None
    if len(args) == 2:
        config, prompt = args
    elif len(args) == 1:
        if _is_config(args[0]):
            config = args[0]
        else:
            prompt = args[0]
    if prompt is None or prompt == "-":
        prompt = _read_stdin(stdin, asked=prompt == "-")
    if not prompt.strip():
        raise InputError("the prompt is empty")
    return config or os.fspath(default_config_path()), prompt


def _read_stdin(stdin: TextIO | None, asked: bool) -> str:
    if stdin is None or stdin.closed:
        raise InputError("no prompt given and no stdin to read it from")
    try:
        if not asked and stdin.isatty():
            raise InputError("no prompt given: pass one, or pipe it in (echo text | router run)")
        return stdin.read()
    except (OSError, ValueError) as exc:
        raise InputError(f"no prompt given, and stdin cannot be read: {exc}") from None


def config_or_default(config: str | None) -> str:
    return config or os.fspath(default_config_path())


__all__ = ["InputError", "config_and_prompt", "config_or_default"]

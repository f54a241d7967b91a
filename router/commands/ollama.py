"""`router pull [CONFIG] MODEL` and `router rm [CONFIG] MODEL` for an Ollama provider."""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any


class PullBar:
    """Draws Ollama's progress stream: a bar while a layer downloads, a line per step."""

    def __init__(self, stream: IO[str], tty: bool) -> None:
        self.stream = stream
        self.tty = tty
        self._last = ""

    def __call__(self, step: Any) -> None:  # a PullProgress
        if step.total and step.completed is not None:
            if not self.tty:
                if step.status != self._last:
                    self.stream.write(step.status + "\n")
                    self._last = step.status
                return
            share = min(1.0, step.completed / step.total) if step.total else 0.0
            bar = "#" * int(24 * share) + "." * (24 - int(24 * share))
            size = f"{_size(step.completed)}/{_size(step.total)}"
            self.stream.write(f"\r{step.status} [{bar}] {share:4.0%} {size}")
            self._last = step.status
        else:
            end = "\n" if self.tty and self._last and self._last != step.status else ""
            self.stream.write(f"{end}{step.status}\n")
            self._last = step.status
        self.stream.flush()


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def _target(ns: argparse.Namespace) -> tuple[str | None, str] | None:
    if len(ns.args) > 2:
        print(f"router: error: {ns.command} takes [CONFIG] MODEL", file=sys.stderr)
        return None
    return (None, ns.args[0]) if len(ns.args) == 1 else (ns.args[0], ns.args[1])


def cmd_pull(ns: argparse.Namespace) -> int:
    from router.commands.health import open_router

    target = _target(ns)
    if target is None:
        return 2
    config, model = target
    with open_router(config, check_tests=False) as r:
        r.pull(model, provider=ns.provider, progress=PullBar(sys.stderr, sys.stderr.isatty()))
    print(f"pulled {model}")
    return 0


def cmd_rm(ns: argparse.Namespace) -> int:
    from router.commands.health import open_router

    target = _target(ns)
    if target is None:
        return 2
    config, model = target
    with open_router(config, check_tests=False) as r:
        r.rm(model, provider=ns.provider)
    print(f"deleted {model}")
    return 0


def register(sub: Any) -> None:
    for name, func, text in (
        ("pull", cmd_pull, "pull a model into an Ollama provider (progress from its stream)"),
        ("rm", cmd_rm, "delete a model from an Ollama provider"),
    ):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("args", nargs="+", metavar="[CONFIG] MODEL")
        sp.add_argument("--provider", "-p", help="the Ollama provider, when there are several")
        sp.set_defaults(func=func)


__all__ = ["PullBar", "register"]

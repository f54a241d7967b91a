"""Bounds on what a config file may cost to read, checked before anything is built.

A config is read by a serving process on every reload, so a careless or hostile file
must fail as a `ConfigError`, never as a hang or a MemoryError:

- only regular files are read (a FIFO blocks forever, `/dev/zero` never ends), opened
  without blocking and checked with `fstat` after opening, so a symlink is judged by
  what it points at;
- at most `max_bytes` are read (`ROUTER_MAX_CONFIG_BYTES`, default 4 MiB a file);
- YAML aliases may add at most `max_alias_nodes` nodes when expanded
  (`ROUTER_MAX_ALIAS_NODES`, default 100,000): 600 bytes of nested aliases expand
  to billions of nodes otherwise.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_MAX_ALIAS_NODES = 100_000
DEFAULT_MAX_PATH = 4096  # a model file's path, after expansion (PATH_MAX on Linux)


@dataclass(frozen=True, slots=True)
class ReadLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_alias_nodes: int = DEFAULT_MAX_ALIAS_NODES

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ReadLimits:
        """The limits, with `ROUTER_MAX_CONFIG_BYTES` / `ROUTER_MAX_ALIAS_NODES` applied."""
        env = os.environ if environ is None else environ
        return cls(
            _positive(env.get("ROUTER_MAX_CONFIG_BYTES"), DEFAULT_MAX_BYTES),
            _positive(env.get("ROUTER_MAX_ALIAS_NODES"), DEFAULT_MAX_ALIAS_NODES),
        )


def _positive(text: str | None, default: int) -> int:
    try:
        value = int(text) if text else default
    except ValueError:
        return default
    return value if value > 0 else default


class RefusedFile(OSError):
    """The path is not a regular file, or is larger than the limit; `str` says which."""


def read_regular(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; RefusedFile or OSError otherwise.

    O_NONBLOCK keeps `open` of a FIFO from waiting for a writer; the check runs on the
    opened descriptor, so a file swapped for a device between a check and the read
    is still refused.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise RefusedFile(f"not a regular file ({_kind(mode)}); only regular files are read")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise RefusedFile(
                    f"the file is larger than {max_bytes:,} bytes "
                    "(the limit is ROUTER_MAX_CONFIG_BYTES)"
                )
        return b"".join(chunks)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a plain file"


__all__ = [
    "DEFAULT_MAX_ALIAS_NODES",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PATH",
    "ReadLimits",
    "RefusedFile",
    "read_regular",
]

"""Where cached answers are kept: a memory LRU bounded by bytes, or a SQLite file.

`CacheBackend` is the seam: a shared store (Redis) implements the same three
methods and every process of a deployment sees one cache. Values are opaque bytes;
expiry is an absolute wall-clock time the caller computes, so the clock is the
caller's (and a test's) to inject.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

Clock = Callable[[], float]


@runtime_checkable
class CacheBackend(Protocol):
    def get(self, key: str) -> bytes | None:
        """The value under `key` unless it expired. Safe from many threads."""
        ...

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Keep `value` for `ttl` seconds."""
        ...

    def close(self) -> None: ...


class MemoryCache:
    """A least-recently-used dict, bounded by the bytes of its keys and values."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, *, clock: Clock = time.time) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self._items: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            value, expires = item
            if expires <= self._clock():
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return value

    def set(self, key: str, value: bytes, ttl: float) -> None:
        size = len(key) + len(value)
        if size > self.max_bytes:
            return  # would evict everything and still not fit
        with self._lock:
            if key in self._items:
                self._drop(key)
            self._items[key] = (value, self._clock() + ttl)
            self._bytes += size
            while self._bytes > self.max_bytes:
                oldest = next(iter(self._items))
                self._drop(oldest)

    def _drop(self, key: str) -> None:
        value, _ = self._items.pop(key)
        self._bytes -= len(key) + len(value)

    def close(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __repr__(self) -> str:
        return f"<MemoryCache {len(self._items)} items, {self._bytes}/{self.max_bytes} bytes>"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_expires ON responses (expires);
"""

PURGE_EVERY = 1000  # writes between deletions of expired rows


class SQLiteCache:
    """Answers in a SQLite file (WAL): kept across restarts, shared by processes."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock = time.time) -> None:
        self.path = os.fspath(path)
        if self.path != ":memory:":
            self.path = os.path.abspath(os.path.expanduser(self.path))
            parent = os.path.dirname(self.path)
            if parent:
                os.makedirs(parent, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._writes = 0
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=10.0
        )
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"response cache {self.path} is closed")
        return self._conn

    def get(self, key: str) -> bytes | None:
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT value FROM responses WHERE key = ? AND expires > ?",
                    (key, self._clock()),
                )
                .fetchone()
            )
        return None if row is None else bytes(row[0])

    def set(self, key: str, value: bytes, ttl: float) -> None:
        now = self._clock()
        with self._lock:
            db = self._db()
            db.execute(
                "INSERT OR REPLACE INTO responses (key, value, expires) VALUES (?, ?, ?)",
                (key, value, now + ttl),
            )
            self._writes += 1
            if self._writes % PURGE_EVERY == 0:
                db.execute("DELETE FROM responses WHERE expires <= ?", (now,))

    def __len__(self) -> int:
        with self._lock:
            (n,) = self._db().execute("SELECT count(*) FROM responses").fetchone()
        return int(n)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"<SQLiteCache {self.path!r}>"


__all__ = ["CacheBackend", "MemoryCache", "SQLiteCache"]

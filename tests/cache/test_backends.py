"""The cache backends on their own: LRU by bytes, expiry by an injected clock, SQLite files."""

from __future__ import annotations

import threading

import pytest

from router.cache import CacheBackend, MemoryCache, SQLiteCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_cache_evicts_least_recently_used_by_bytes():
    c = MemoryCache(max_bytes=30)
    c.set("a", b"1234567890", 60)  # 11 bytes with its key
    c.set("b", b"1234567890", 60)
    assert c.get("a") == b"1234567890"  # a is now the most recent
    c.set("c", b"1234567890", 60)  # 33 > 30: b goes, not a
    assert c.get("b") is None
    assert c.get("a") is not None and c.get("c") is not None
    assert c.size_bytes == 22 and len(c) == 2


def test_memory_cache_refuses_a_value_larger_than_itself():
    c = MemoryCache(max_bytes=10)
    c.set("a", b"1", 60)
    c.set("big", b"x" * 100, 60)
    assert c.get("big") is None and c.get("a") == b"1"


def test_memory_cache_replacing_a_key_keeps_the_byte_count_right():
    c = MemoryCache(max_bytes=1000)
    for i in range(10):
        c.set("k", b"x" * i, 60)
    assert c.size_bytes == 1 + 9 and len(c) == 1


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request, tmp_path):
    """Each backend on the test's clock (Redis: its values carry the caller's expiry too)."""
    clock = Clock()
    b: CacheBackend
    if request.param == "memory":
        b = MemoryCache(clock=clock)
    elif request.param == "sqlite":
        b = SQLiteCache(tmp_path / "c.sqlite", clock=clock)
    else:
        from router.runtime.state.redis_cache import RedisCache

        server = request.getfixturevalue("redis_server")
        b = RedisCache(server.url, prefix="contract:", timeout_ms=2000, clock=clock)
    assert isinstance(b, CacheBackend)
    yield b, clock
    b.close()


def test_a_value_comes_back_byte_for_byte_and_a_missing_key_is_none(backend):
    b, _ = backend
    value = bytes(range(256)) * 8  # binary, and long enough for Redis to compress it
    b.set("k", value, 60)
    b.set("empty", b"", 60)
    assert b.get("k") == value and b.get("empty") == b""
    assert b.get("absent") is None
    b.set("k", b"new", 60)
    assert b.get("k") == b"new"


def test_entries_expire_after_their_ttl(backend):
    b, clock = backend
    b.set("k", b"v", 10)
    clock.now += 9.9
    assert b.get("k") == b"v"
    clock.now += 0.2
    assert b.get("k") is None


def test_backends_are_safe_from_many_threads(backend):
    b, _ = backend
    errors = []

    def work(n: int) -> None:
        try:
            for i in range(200):
                b.set(f"{n}-{i}", str(i).encode(), 60)
                assert b.get(f"{n}-{i}") == str(i).encode()
        except Exception as exc:  # collected and raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors


def test_sqlite_cache_survives_a_restart_and_is_shared_by_two_handles(tmp_path):
    clock = Clock()
    path = tmp_path / "sub" / "cache.sqlite"
    first = SQLiteCache(path, clock=clock)
    first.set("k", b"answer", 60)
    second = SQLiteCache(path, clock=clock)
    assert second.get("k") == b"answer"
    first.close()
    third = SQLiteCache(path, clock=clock)
    assert third.get("k") == b"answer" and len(third) == 1
    second.close()
    third.close()
    with pytest.raises(RuntimeError, match="closed"):
        third.get("k")

"""`RedisCache` on a real redis-server: prefixed keys, Redis's own expiry, compact values,
and a Redis that dies and comes back (misses meanwhile, one warning, hits again)."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from router.runtime.state.redis_cache import COMPRESS_FROM, RedisCache, pack, unpack
from tests.runtime.state.redis_server import RedisServer, redis_binary


def _command(port: int, *args: str) -> bytes:
    """One raw RESP command, read back whole (small answers): no client library needed."""
    parts = [f"*{len(args)}\r\n".encode()]
    for a in args:
        parts.append(f"${len(a.encode())}\r\n{a}\r\n".encode())
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"".join(parts))
        return s.recv(65536)


def _wait_until(check, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def cache(redis_server):
    c = RedisCache(redis_server.url, prefix="t:cache:", timeout_ms=2000)
    yield c
    c.close()


def test_keys_carry_the_prefix_and_redis_expires_them(cache, redis_server):
    cache.set("abc", b"answer", 60)
    keys = _command(redis_server.port, "KEYS", "*")
    assert b"t:cache:abc" in keys and keys.count(b"\r\n$") == 1
    ttl_ms = int(_command(redis_server.port, "PTTL", "t:cache:abc")[1:].strip())
    assert 0 < ttl_ms <= 60_000  # Redis's own expiry, not only ours


def test_a_short_ttl_expires_in_redis_itself(cache, redis_server):
    cache.set("short", b"v", 0.05)  # 50 ms
    gone = _wait_until(lambda: _command(redis_server.port, "EXISTS", "t:cache:short") == b":0\r\n")
    assert gone
    assert cache.get("short") is None


def test_values_are_compact_and_round_trip():
    text = b'{"text":"' + b"the same words again " * 100 + b'"}'
    packed = pack(text, 123.0)
    assert len(text) >= COMPRESS_FROM and len(packed) < len(text) // 4
    assert unpack(packed) == (text, 123.0)
    small = pack(b"hi", 5.0)
    assert len(small) == len(b"hi") + 9 and unpack(small) == (b"hi", 5.0)
    with pytest.raises(ValueError):
        unpack(b"\x00\x01")


def test_a_foreign_value_under_the_key_is_a_miss(cache, redis_server):
    _command(redis_server.port, "SET", "t:cache:odd", "not ours")
    assert cache.get("odd") is None


def test_two_caches_on_one_redis_share_answers_and_prefixes_keep_fleets_apart(redis_server):
    a = RedisCache(redis_server.url, prefix="fleet-a:", timeout_ms=2000)
    b = RedisCache(redis_server.url, prefix="fleet-a:", timeout_ms=2000)
    other = RedisCache(redis_server.url, prefix="fleet-b:", timeout_ms=2000)
    try:
        a.set("k", b"from a", 60)
        assert b.get("k") == b"from a"
        assert other.get("k") is None
    finally:
        for c in (a, b, other):
            c.close()


def test_a_dead_redis_is_a_miss_with_one_warning_then_hits_again(caplog):
    binary = redis_binary()
    assert binary is not None
    server = RedisServer(binary)
    server.start()
    cache = RedisCache(server.url, prefix="d:", timeout_ms=200)
    try:
        cache.set("k", b"before", 60)
        assert cache.get("k") == b"before"
        server.stop()
        with caplog.at_level(logging.WARNING, logger="router.state"):
            for _ in range(50):  # bounded: many requests during the outage
                assert cache.get("k") is None
                cache.set("k2", b"dropped", 60)
        warnings = [r for r in caplog.records if "response cache" in r.getMessage()]
        assert len(warnings) == 1 and "unreachable" in warnings[0].getMessage()
        status = cache.status()
        assert status["connected"] is False and status["outages"] == 1
        assert status["misses_while_down"] >= 49 and status["writes_dropped"] >= 49
        server.start()  # same port, empty: what was cached before is gone
        assert _wait_until(lambda: cache.up)
        assert cache.get("k") is None
        cache.set("k", b"after", 60)
        assert cache.get("k") == b"after"
        assert cache.status()["connected"] is True
    finally:
        cache.close()
        server.stop()


def test_a_redis_that_is_down_at_start_serves_misses_and_connects_later():
    binary = redis_binary()
    assert binary is not None
    server = RedisServer(binary)  # a free port, nothing listening yet
    cache = RedisCache(server.url, prefix="late:", timeout_ms=200)
    try:
        assert cache.get("k") is None and not cache.up
        cache.set("k", b"lost", 60)
        server.start()
        assert _wait_until(lambda: cache.up)
        cache.set("k", b"kept", 60)
        assert cache.get("k") == b"kept"
    finally:
        cache.close()
        server.stop()


def test_the_url_password_never_shows(redis_server):
    url = redis_server.url.replace("redis://", "redis://user:s3cret-canary@")
    cache = RedisCache(url, prefix="pw:", timeout_ms=200)
    try:
        cache.get("k")  # auth fails on a server with no users: a miss, never a raise
        shown = f"{cache!r} {cache.status()}"
        assert "s3cret-canary" not in shown and "****" in shown
    finally:
        cache.close()

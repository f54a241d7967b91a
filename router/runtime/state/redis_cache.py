"""`RedisCache`: the response cache's backend in Redis, shared by every process and host
of a deployment (`settings.cache: {backend: redis}`).

It lives here, beside `RedisLink`, because the `redis` client is imported in one module
only and the cache package may import only the config: the runtime builds this backend
and hands it to `ResponseCache` through `open_backend`'s factories.

- Keys are `prefix + key` (`router:cache:<sha256>` by default), so several fleets and
  the shared-state keys live side by side in one Redis.
- Expiry is Redis's own (`SET ... PX`), so Redis frees what nobody asks for again. The
  value also carries the absolute expiry the caller's clock computed (8 bytes), so a
  test's injected clock decides hits exactly as the memory and SQLite backends do.
- Values are the cache's compact JSON, zlib-compressed when that saves space.
- A dead or slow Redis never stops serving: `get` is a miss and `set` is dropped, each
  bounded by `timeout_ms`. The link warns once per outage, reconnects in the background
  and the cache hits again once Redis is back; `status()` says which it is.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import Callable
from typing import Any

from router.config.model import CacheStore, StateSettings
from router.runtime.state.redis_link import DOWN, RedisLink

Clock = Callable[[], float]

_HEADER = struct.Struct("!dB")  # absolute expiry (caller's clock), format
_RAW, _ZLIB = 0, 1
COMPRESS_FROM = 512  # bytes; smaller JSON rarely shrinks enough to pay for the CPU


def pack(value: bytes, expires: float) -> bytes:
    if len(value) >= COMPRESS_FROM:
        packed = zlib.compress(value, 1)
        if len(packed) < len(value):
            return _HEADER.pack(expires, _ZLIB) + packed
    return _HEADER.pack(expires, _RAW) + value


def unpack(raw: bytes) -> tuple[bytes, float]:
    """(value, absolute expiry); ValueError for bytes this backend did not write."""
    if len(raw) < _HEADER.size:
        raise ValueError("response cache: a value too short to be ours")
    expires, kind = _HEADER.unpack_from(raw)
    body = raw[_HEADER.size :]
    if kind == _ZLIB:
        return zlib.decompress(body), expires
    if kind == _RAW:
        return body, expires
    raise ValueError(f"response cache: unknown value format {kind}")


class RedisCache:
    """A `CacheBackend` over one Redis. Safe from many threads (redis-py pools)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "router:cache:",
        timeout_ms: float = 50.0,
        clock: Clock = time.time,
        background: bool = True,
    ) -> None:
        from router.secrets import Secret

        settings = StateSettings(url=Secret(url), timeout_ms=timeout_ms, prefix=prefix)
        self.prefix = prefix
        self._clock = clock
        self.misses_down = 0  # lookups answered as misses because Redis was away
        self.writes_dropped = 0
        self.link = RedisLink(
            settings,
            background=background,
            role="response cache",
            fallback="every lookup is a miss until it is back",
            decode=False,
            scripts={},
        )

    @classmethod
    def from_store(cls, store: CacheStore, clock: Clock = time.time) -> RedisCache:
        if store.url is None:  # the config's checks refuse this; a caller building by hand
            raise ValueError("a Redis response cache needs settings.cache.url or settings.state")
        return cls(
            store.url.reveal(), prefix=store.prefix, timeout_ms=store.timeout_ms, clock=clock
        )

    @property
    def up(self) -> bool:
        return self.link.up

    def get(self, key: str) -> bytes | None:
        full = self.prefix + key
        raw = self.link.command(lambda c: c.get(full))
        if raw is DOWN:
            self.misses_down += 1
            return None
        if raw is None:
            return None
        try:
            value, expires = unpack(bytes(raw))
        except (ValueError, zlib.error):
            return None  # another writer's or a corrupt value: a miss, overwritten on keep
        return value if expires > self._clock() else None

    def set(self, key: str, value: bytes, ttl: float) -> None:
        ms = max(1, int(ttl * 1000))
        data = pack(value, self._clock() + ttl)
        full = self.prefix + key
        if self.link.command(lambda c: c.set(full, data, px=ms)) is DOWN:
            self.writes_dropped += 1

    def status(self) -> dict[str, Any]:
        out = self.link.status()
        out["backend"] = "redis"
        out["prefix"] = self.prefix
        out["misses_while_down"] = self.misses_down
        out["writes_dropped"] = self.writes_dropped
        return out

    def close(self) -> None:
        self.link.close()

    def __repr__(self) -> str:
        state = "up" if self.link.up else "down"
        return f"<RedisCache {self.link.url} prefix={self.prefix!r} {state}>"


__all__ = ["RedisCache", "pack", "unpack"]

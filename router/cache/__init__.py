"""The exact-match response cache (`cache: {ttl: 600}`) and its backends."""

from router.cache.backends import CacheBackend, MemoryCache, SQLiteCache
from router.cache.response_cache import CacheLookup, ResponseCache, cache_key

__all__ = [
    "CacheBackend",
    "CacheLookup",
    "MemoryCache",
    "ResponseCache",
    "SQLiteCache",
    "cache_key",
]

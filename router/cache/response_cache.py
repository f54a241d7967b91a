"""The exact-match response cache: which requests it serves, under which key.

A request is looked up after the decision (so the rule is known) and before any
model is called. The key is a SHA-256 over what makes two answers interchangeable:
the normalised messages, the call parameters (the rule's merged with the
request's), tools, response format, and the rule that serves (its name, targets
and templates: an edit to any of them is a new key). A request whose effective
temperature is above 0 is sampled, so it is not cached unless the rule's policy
says `sampled: true`; `route(..., cache=False)` skips the cache for one request.

A hit costs nothing: `Result.cached` is true, `cost_usd` 0, and the usage store
records it as a hit (so `router usage` counts it) without spending budget.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from router.cache.backends import CacheBackend, Clock, MemoryCache, SQLiteCache
from router.config.model import CachePolicy, CacheStore, Config, RuleConfig
from router.types import Chunk, Decision, Request, Result, Usage

log = logging.getLogger("router.cache")

STREAM_PIECE = 32  # characters per chunk when a cached answer is streamed


@dataclass(frozen=True, slots=True)
class CacheLookup:
    """A cacheable request: its key, the policy that applies, and the answer if found."""

    key: str
    policy: CachePolicy
    hit: Result | None


def policy_for(config: Config, rule: RuleConfig) -> CachePolicy | None:
    policy = rule.cache if rule.cache is not None else config.settings.cache
    return policy if policy is not None and policy.enabled else None


def uses_cache(config: Config) -> bool:
    return any(policy_for(config, r) is not None for r in config.rules)


def cache_key(rule: RuleConfig, request: Request) -> str:
    params = {**rule.params, **request.params}
    body = [
        rule.name,
        list(rule.targets),
        rule.system,
        rule.prompt,
        list(request.messages),
        params,
        list(request.tools) if request.tools else None,
        request.response_format,
    ]
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def is_sampled(rule: RuleConfig, request: Request) -> bool:
    temperature = request.params.get("temperature", rule.params.get("temperature"))
    try:
        return temperature is not None and float(temperature) > 0
    except (TypeError, ValueError):
        return True


# Makes the backend `settings.cache.backend` names, from its settings, the config's
# directory and the clock. A backend whose library this package may not import (Redis)
# is handed in by the runtime: `open_backend(..., factories={"redis": ...})`.
BackendFactory = Callable[[CacheStore, "str | None", Clock], CacheBackend]


def _sqlite(store: CacheStore, base_dir: str | None, clock: Clock) -> CacheBackend:
    path = os.path.expanduser(store.path or "response-cache.sqlite")
    if not os.path.isabs(path) and base_dir:
        path = os.path.join(base_dir, path)
    return SQLiteCache(path, clock=clock)


def _memory(store: CacheStore, base_dir: str | None, clock: Clock) -> CacheBackend:
    return MemoryCache(store.max_bytes, clock=clock)


BACKENDS: Mapping[str, BackendFactory] = {"memory": _memory, "sqlite": _sqlite}


def open_backend(
    store: CacheStore,
    base_dir: str | None,
    clock: Clock,
    factories: Mapping[str, BackendFactory] | None = None,
) -> CacheBackend:
    """The backend `store.backend` names; `factories` add to (or replace) the built-in ones."""
    known = {**BACKENDS, **(factories or {})}
    factory = known.get(store.backend)
    if factory is None:
        raise ValueError(
            f"response cache backend {store.backend!r} is not available here"
            f" (known: {', '.join(sorted(known))})"
        )
    return factory(store, base_dir, clock)


def _encode(result: Result) -> bytes:
    return json.dumps(
        {
            "text": result.text,
            "model": result.model,
            "provider": result.provider,
            "rule": result.rule,
            "usage": [result.usage.input_tokens, result.usage.output_tokens],
            "finish_reason": result.finish_reason,
            "tool_calls": list(result.tool_calls) if result.tool_calls else None,
        },
        separators=(",", ":"),
        default=str,
    ).encode("utf-8")


def _decode(raw: bytes, decision: Decision) -> Result:
    d: dict[str, Any] = json.loads(raw)
    tool_calls = d.get("tool_calls")
    return Result(
        text=d["text"],
        model=d["model"],
        provider=d["provider"],
        usage=Usage(int(d["usage"][0]), int(d["usage"][1])),
        cost_usd=0.0,
        latency_s=0.0,
        decision=decision,
        rule=d.get("rule"),
        finish_reason=d.get("finish_reason"),
        tool_calls=tuple(tool_calls) if tool_calls else None,
        cached=True,
    )


class ResponseCache:
    """Looks answers up and keeps them, in the backend `settings.cache` names."""

    def __init__(self, backend: CacheBackend, store: CacheStore | None = None) -> None:
        self.backend = backend
        self.store_settings = store

    @classmethod
    def for_config(
        cls,
        config: Config,
        *,
        clock: Clock | None = None,
        factories: Mapping[str, BackendFactory] | None = None,
    ) -> ResponseCache | None:
        """None when no rule of `config` caches."""
        if not uses_cache(config):
            return None
        base = os.path.dirname(config.files[0]) if config.files else None
        import time

        store = config.settings.cache_store
        return cls(open_backend(store, base, clock or time.time, factories), store)

    def status(self) -> dict[str, Any]:
        """The backend's health where it has one (Redis: connected or not)."""
        status = getattr(self.backend, "status", None)
        if callable(status):
            return dict(status())
        backend = self.store_settings.backend if self.store_settings else "memory"
        return {"backend": backend, "connected": True}

    def lookup(
        self, config: Config, rule: RuleConfig, request: Request, decision: Decision
    ) -> CacheLookup | None:
        """None when the cache does not apply to this request (served by `rule`)."""
        policy = policy_for(config, rule)
        if policy is None or (not policy.sampled and is_sampled(rule, request)):
            return None
        key = cache_key(rule, request)
        try:
            raw = self.backend.get(key)
        except Exception as exc:  # a cache that fails is a miss, never a failed request
            log.warning("response cache read failed: %s", exc)
            raw = None
        return CacheLookup(key, policy, None if raw is None else _decode(raw, decision))

    def keep(self, lookup: CacheLookup, result: Result) -> None:
        if result.tool_calls is None and not result.text:
            return  # nothing worth serving again
        try:
            self.backend.set(lookup.key, _encode(result), lookup.policy.ttl)
        except Exception as exc:
            log.warning("response cache write failed: %s", exc)

    def close(self) -> None:
        self.backend.close()


def replay_chunks(result: Result) -> Iterator[Chunk]:
    """A cached answer as a stream: its text in pieces, then the closing chunk."""
    text = result.text
    for i in range(0, len(text), STREAM_PIECE):
        yield Chunk(text[i : i + STREAM_PIECE], result.model)
    yield Chunk("", result.model, result)


__all__ = [
    "BACKENDS",
    "BackendFactory",
    "CacheLookup",
    "ResponseCache",
    "cache_key",
    "is_sampled",
    "open_backend",
    "policy_for",
    "replay_chunks",
    "uses_cache",
]

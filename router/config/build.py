"""Frozen dataclasses from merged sections that passed the schema and the semantic checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from router.config.model import (
    ApiKey,
    BreakerPolicy,
    Budget,
    CachePolicy,
    CacheStore,
    Config,
    Cost,
    HedgePolicy,
    MetricsAccess,
    ModelConfig,
    ProviderConfig,
    RequestLogSettings,
    RetryPolicy,
    RoutingTest,
    RuleConfig,
    ServerConfig,
    Settings,
    SpillPolicy,
    StateSettings,
    UseCaseConfig,
    Where,
)
from router.config.params import normalise_params
from router.config.semantics import MODEL_KEYS, Merged
from router.config.sources import Source, index, join, locate
from router.config.yamlsrc import SECRET_KEY
from router.secrets import MaskedURL, Secret, is_sensitive_name, mask_url

_PROVIDER_KEYS = frozenset(
    {"type", "api_key", "api_base", "timeout", "retries", "backoff", "max_backoff", "enabled"}
)
# the keys every model takes; the rest are settings for its adapter
_MODEL_KEYS = frozenset(MODEL_KEYS)
_RETRY_KEYS = ("retries", "backoff", "max_backoff")


def build(merged: Merged, sources: Sequence[Source], files: tuple[str, ...], sha256: str) -> Config:
    def where(pointer: str) -> Where:
        src, pos = locate(sources, pointer)
        return Where(src.label if src else None, pos[0] if pos else None, pointer)

    providers = {
        name: _provider(name, raw, merged.unset.get(name), where(join("providers", name)))
        for name, raw in merged.providers.items()
    }
    models = {
        name: _model(name, raw, where(join("models", name))) for name, raw in merged.models.items()
    }
    rules = tuple(_rule(raw, where(index("rules", i))) for i, raw in enumerate(merged.rules))
    use_cases = {
        name: UseCaseConfig(
            name=name,
            matches=raw.get("matches"),
            contains=_strings(raw.get("contains")),
            where=where(join("use_cases", name)),
        )
        for name, raw in merged.use_cases.items()
    }
    tests = tuple(
        RoutingTest(
            prompt=raw["prompt"],
            use_case=raw.get("use_case"),
            tags=_strings(raw.get("tags")),
            metadata=dict(raw.get("metadata") or {}),
            expect=dict(raw.get("expect") or {}),
            where=where(index("tests", i)),
        )
        for i, raw in enumerate(merged.tests)
    )
    budgets = tuple(
        Budget(
            scope=b.data["scope"],
            name=b.data.get("name"),
            daily=_float(b.data.get("daily")),
            monthly=_float(b.data.get("monthly")),
            where=where(b.pointer),
        )
        for b in merged.budgets
    )
    return Config(
        providers=providers,
        models=models,
        rules=rules,
        use_cases=use_cases,
        tests=tests,
        budgets=budgets,
        settings=_settings(merged.settings),
        server=_server(merged.server, where),
        files=files,
        sha256=sha256,
    )


def _provider(name: str, raw: Mapping[str, Any], unset: str | None, where: Where) -> ProviderConfig:
    reason = None
    if raw.get("enabled") is False:
        reason = "disabled in config"
    elif unset is not None:
        reason = f"{unset} is not set"
    key = raw.get("api_key")
    return ProviderConfig(
        name=name,
        type=raw["type"],
        api_key=Secret(key) if key else None,
        api_base=_url(raw.get("api_base")),
        timeout=_float(raw.get("timeout")),
        disabled_reason=reason,
        retry=_retry(raw) or RetryPolicy(),
        settings=_hide_secrets({k: v for k, v in raw.items() if k not in _PROVIDER_KEYS}),
        where=where,
    )


def _model(name: str, raw: Mapping[str, Any], where: Where) -> ModelConfig:
    cost = raw.get("cost")
    breaker = raw.get("breaker") or {}
    defaults = BreakerPolicy()
    return ModelConfig(
        name=name,
        provider=raw["provider"],
        model=str(raw.get("model") or name),
        context=int(raw.get("context", 8192)),
        cost=(
            Cost(float(cost.get("input", 0.0)), float(cost.get("output", 0.0)))
            if isinstance(cost, dict)
            else None
        ),
        capabilities=frozenset(raw.get("capabilities") or ()),
        # A llama_cpp model's `max_tokens` (its default call parameter) is its max_output.
        max_output=_int(raw.get("max_output", raw.get("max_tokens"))),
        weight=float(raw.get("weight", 1.0)),
        latency_ms=_float(raw.get("latency_ms")),
        rpm=_int(raw.get("rpm")),
        tpm=_int(raw.get("tpm")),
        breaker=BreakerPolicy(
            failures=int(breaker.get("failures", defaults.failures)),
            window=float(breaker.get("window", defaults.window)),
            cooldown=float(breaker.get("cooldown", defaults.cooldown)),
        ),
        settings=_hide_secrets({k: v for k, v in raw.items() if k not in _MODEL_KEYS}),
        where=where,
    )


def _rule(raw: Mapping[str, Any], where: Where) -> RuleConfig:
    return RuleConfig(
        name=raw["name"],
        targets=tuple(raw["targets"]),
        when=raw.get("when") or None,
        strategy=raw.get("strategy", "ordered"),
        max_cost=_float(raw.get("max_cost")),
        params=normalise_params(raw.get("params") or {}),
        system=raw.get("system"),
        prompt=raw.get("prompt"),
        fallback=raw.get("fallback"),
        on_budget=raw.get("on_budget", "fallback"),
        on_rate_limit=raw.get("on_rate_limit", "skip"),
        retry=_retry(raw),
        weights={k: float(v) for k, v in (raw.get("weights") or {}).items()},
        deadline=_float(raw.get("deadline")),
        spill=_spill(raw.get("spill")),
        cache=_cache_policy(raw["cache"]) if "cache" in raw else None,
        hedge=HedgePolicy(float(raw["hedge"]["after_ms"])) if raw.get("hedge") else None,
        where=where,
    )


def _spill(raw: Mapping[str, Any] | None) -> SpillPolicy | None:
    if not raw:
        return None
    queue = raw.get("queue")
    return SpillPolicy(int(queue) if queue is not None else None, _float(raw.get("wait_ms")))


def _cache_policy(raw: Any) -> CachePolicy:
    """`cache: false`, `cache: true` or `cache: {ttl: 600, sampled: true}`."""
    if isinstance(raw, bool):
        return CachePolicy(enabled=raw)
    d = CachePolicy()
    return CachePolicy(
        enabled=bool(raw.get("enabled", True)),
        ttl=float(raw.get("ttl", d.ttl)),
        sampled=bool(raw.get("sampled", d.sampled)),
    )


def _cache_store(raw: Any, state: StateSettings) -> CacheStore:
    """`settings.cache`'s store keys; a Redis one defaults to the shared state's Redis."""
    d = CacheStore()
    if not isinstance(raw, Mapping):
        return d
    backend = str(raw.get("backend", d.backend))
    url = raw.get("url")
    return CacheStore(
        backend=backend,
        path=raw.get("path") or None,
        max_bytes=int(raw.get("max_bytes", d.max_bytes)),
        url=Secret(str(url)) if url else (state.url if backend == "redis" else None),
        prefix=str(raw.get("prefix", state.prefix + "cache:")),
        timeout_ms=float(raw.get("timeout_ms", state.timeout_ms)),
    )


def _request_log(raw: Any, log_text: bool) -> RequestLogSettings | None:
    """`request_log: path` or `request_log: {path, max_bytes, backups, log_text}`."""
    if not raw:
        return None
    if isinstance(raw, str):
        return RequestLogSettings(path=raw, log_text=log_text)
    d = RequestLogSettings(path="")
    return RequestLogSettings(
        path=str(raw["path"]),
        max_bytes=int(raw.get("max_bytes", d.max_bytes)),
        backups=int(raw.get("backups", d.backups)),
        log_text=bool(raw.get("log_text", log_text)),
    )


def _retry(raw: Mapping[str, Any]) -> RetryPolicy | None:
    if not any(k in raw for k in _RETRY_KEYS):
        return None
    d = RetryPolicy()
    return RetryPolicy(
        retries=int(raw.get("retries", d.retries)),
        backoff=float(raw.get("backoff", d.backoff)),
        max_backoff=float(raw.get("max_backoff", d.max_backoff)),
    )


def _settings(raw: Mapping[str, Any]) -> Settings:
    d = Settings()
    state = _state(raw.get("state"))
    return Settings(
        default_max_tokens=int(raw.get("default_max_tokens", d.default_max_tokens)),
        deadline=_float(raw.get("deadline", d.deadline)),
        usage_db=raw.get("usage_db") or None,
        debounce_ms=int(raw.get("debounce_ms", d.debounce_ms)),
        allow_unknown_prices=bool(raw.get("allow_unknown_prices", d.allow_unknown_prices)),
        exact_tokens=bool(raw.get("exact_tokens", d.exact_tokens)),
        request_log=_request_log(raw.get("request_log"), bool(raw.get("log_text", False))),
        cache=_cache_policy(raw["cache"]) if raw.get("cache") is not None else None,
        cache_store=_cache_store(raw.get("cache"), state),
        state=state,
    )


def _state(raw: Any) -> StateSettings:
    """`state: redis://...` or `state: {url: ..., timeout_ms: ...}`; "memory" or none: local."""
    if raw is None or raw == "memory":
        return StateSettings()
    if isinstance(raw, str):
        raw = {"url": raw}
    d = StateSettings()
    url = raw.get("url")
    return StateSettings(
        url=Secret(str(url)) if url and url != "memory" else None,
        timeout_ms=float(raw.get("timeout_ms", d.timeout_ms)),
        prefix=str(raw.get("prefix", d.prefix)),
        spend_log=str(raw.get("spend_log", d.spend_log)),
        sync_ms=float(raw.get("sync_ms", d.sync_ms)),
    )


def _server(raw: Mapping[str, Any], where: Any) -> ServerConfig:
    d = ServerConfig()
    keys = tuple(
        ApiKey(
            name=entry["name"],
            key=Secret(entry["key"]),
            models=frozenset(entry["models"]) if "models" in entry else None,
            rules=frozenset(entry["rules"]) if "rules" in entry else None,
            daily=_float((entry.get("budget") or {}).get("daily")),
            monthly=_float((entry.get("budget") or {}).get("monthly")),
            rpm=_int(entry.get("rpm")),
            where=where(index(join("server", "keys"), i)),
            admin=bool(entry.get("admin", False)),
        )
        for i, entry in enumerate(raw.get("keys") or ())
    )
    return ServerConfig(
        keys=keys,
        max_body_bytes=int(raw.get("max_body_bytes", d.max_body_bytes)),
        max_concurrent=int(raw.get("max_concurrent", d.max_concurrent)),
        metrics=_metrics_access(raw.get("metrics")),
    )


def _metrics_access(raw: Any) -> MetricsAccess:
    """`metrics: false` or `metrics: {enabled: true, key_required: false}`."""
    if isinstance(raw, bool):
        return MetricsAccess(enabled=raw)
    if not isinstance(raw, Mapping):
        return MetricsAccess()
    d = MetricsAccess()
    return MetricsAccess(
        enabled=bool(raw.get("enabled", d.enabled)),
        key_required=bool(raw.get("key_required", d.key_required)),
    )


class MaskedText(str):
    """A credential among settings (a header's value): a plain `str` to the adapter that
    sends it, but its repr is masked, so a printed or logged config never shows it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'****'"


def _hide_secrets(value: Any, key: str = "", header: bool = False) -> Any:
    """Settings named like credentials (Authorization, X-Api-Key, token...) become MaskedText,
    and so does every sensitive header (Cookie, Proxy-Authorization, any name with key,
    token, secret or auth); a URL holding credentials becomes a MaskedURL."""
    if isinstance(value, dict):
        inside = key.lower().endswith("headers")
        return {k: _hide_secrets(v, k, inside) for k, v in value.items()}
    if isinstance(value, list):
        return [_hide_secrets(v, key) for v in value]
    if isinstance(value, str) and value:
        if key and (SECRET_KEY.search(key) or (header and is_sensitive_name(key))):
            return MaskedText(value)
        if "://" in value and mask_url(value) != value:
            return MaskedURL(value)
    return value


def _url(value: Any) -> str | None:
    return MaskedURL(value) if isinstance(value, str) and value else None


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)

"""Frozen dataclasses a config is built into. Nothing past the loader sees raw dicts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from router.secrets import MaskedURL, Secret


@dataclass(frozen=True, slots=True)
class Where:
    """Where a config element was written: for errors that point at a line."""

    file: str | None = None
    line: int | None = None
    pointer: str = ""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 2  # extra tries of the same model after the first
    backoff: float = 0.5  # base seconds; full jitter: sleep U(0, base * 2**n)
    max_backoff: float = 8.0


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failures: int = 5  # errors within `window` seconds that open the circuit
    window: float = 60.0
    cooldown: float = 30.0


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    type: str  # litellm | llama_cpp | mock
    api_key: Secret | None = None
    api_base: str | None = None
    timeout: float | None = None
    # Set when the provider cannot be used, e.g. "OPENAI_API_KEY is not set".
    disabled_reason: str | None = None
    retry: RetryPolicy = RetryPolicy()
    # Type-specific settings (headers, models_dir, n_gpu_layers, max_loaded, ...).
    settings: Mapping[str, Any] = field(default_factory=dict)
    where: Where = Where()

    def __post_init__(self) -> None:
        # A config built in code gets the same masked repr as one read from YAML.
        if type(self.api_base) is str and self.api_base:
            object.__setattr__(self, "api_base", MaskedURL(self.api_base))

    @property
    def enabled(self) -> bool:
        return self.disabled_reason is None

    def identity(self) -> tuple[Any, ...]:
        """Equal identities mean an instance can be carried over a reload unchanged."""
        key = self.api_key.reveal() if self.api_key else None
        return (self.type, key, self.api_base, self.timeout, _freeze(self.settings))


@dataclass(frozen=True, slots=True)
class Cost:
    input: float = 0.0  # USD per 1M input tokens
    output: float = 0.0  # USD per 1M output tokens

    def estimate(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input + output_tokens * self.output) / 1_000_000


@dataclass(frozen=True, slots=True)
class ModelConfig:
    name: str
    provider: str
    model: str  # the provider's own id (litellm id, GGUF file name or path)
    context: int = 8192
    cost: Cost | None = None  # None: the adapter may know a price (litellm's map)
    capabilities: frozenset[str] = frozenset()
    max_output: int | None = None
    weight: float = 1.0  # for the weighted strategy
    latency_ms: float | None = None  # a hint for `fastest` before any call is measured
    rpm: int | None = None
    tpm: int | None = None
    breaker: BreakerPolicy = BreakerPolicy()
    settings: Mapping[str, Any] = field(default_factory=dict)  # per-model adapter overrides
    where: Where = Where()


@dataclass(frozen=True, slots=True)
class SpillPolicy:
    """Local-first: the rule's first candidate gives way to the next while it is busy."""

    queue: int | None = None  # more than this many requests already waiting
    wait_ms: float | None = None  # expected wait (in flight x measured latency) longer than this


@dataclass(frozen=True, slots=True)
class HedgePolicy:
    """`hedge: {after_ms: 800}`: a slow first candidate gets company instead of the whole
    deadline; the next candidate starts beside it and the first answer wins."""

    after_ms: float


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """`cache: {ttl: 600}` in `settings` (every rule) or on one rule (`cache: false` off)."""

    enabled: bool = True
    ttl: float = 600.0  # seconds an answer is served again
    sampled: bool = False  # also cache requests with temperature > 0


@dataclass(frozen=True, slots=True)
class CacheStore:
    """Where cached answers live: `settings.cache.backend` (memory LRU, SQLite or Redis)."""

    backend: str = "memory"  # memory | sqlite | redis
    path: str | None = None  # SQLite file, relative to the config's directory
    max_bytes: int = 64 * 1024 * 1024  # memory: least recently used go first beyond this
    # redis: `settings.cache.url`, else the URL of `settings.state` (masked: may hold a
    # password); every key starts with `prefix` (the state's prefix + "cache:").
    url: Secret | None = None
    prefix: str = "router:cache:"
    timeout_ms: float = 50.0  # per Redis call; a dead Redis never adds more than this


@dataclass(frozen=True, slots=True)
class RequestLogSettings:
    """`settings.request_log`: one JSON line per request, rotated by size."""

    path: str
    max_bytes: int = 100 * 1024 * 1024
    backups: int = 5  # rotated files kept: path.1 ... path.N
    log_text: bool = False  # prompt and answer text; off by default


@dataclass(frozen=True, slots=True)
class RuleConfig:
    name: str
    targets: tuple[str, ...]
    when: Mapping[str, Any] | None = None  # None: matches everything (a catch-all)
    strategy: str = "ordered"
    max_cost: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # normalised aliases
    system: str | None = None  # jinja2 template
    prompt: str | None = None  # jinja2 template wrapping the last user message
    fallback: str | None = None  # another rule to try when all candidates fail
    on_budget: str = "fallback"  # fallback | error
    on_rate_limit: str = "skip"  # skip | wait
    retry: RetryPolicy | None = None  # overrides the providers' policy
    weights: Mapping[str, float] = field(default_factory=dict)
    deadline: float | None = None  # seconds for all retries and fallbacks together
    spill: SpillPolicy | None = None
    cache: CachePolicy | None = None  # None: as `settings.cache` says
    hedge: HedgePolicy | None = None
    where: Where = Where()


@dataclass(frozen=True, slots=True)
class UseCaseConfig:
    name: str
    matches: str | None = None  # regex on the prompt text
    contains: tuple[str, ...] = ()
    where: Where = Where()


@dataclass(frozen=True, slots=True)
class RoutingTest:
    prompt: str
    use_case: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    expect: Mapping[str, str] = field(default_factory=dict)  # model / rule / provider
    where: Where = Where()


@dataclass(frozen=True, slots=True)
class Budget:
    scope: str  # "global" | "rule" | "model"
    name: str | None  # rule or model name; None for global
    daily: float | None = None  # USD
    monthly: float | None = None
    where: Where = Where()


@dataclass(frozen=True, slots=True)
class StateSettings:
    """`settings.state`: where live state is shared. `url` None: in this process only."""

    url: Secret | None = None  # redis:// or rediss://; may hold a password, so masked
    timeout_ms: float = 50.0  # per Redis call; a dead Redis never adds more than this
    prefix: str = "router:"  # every key starts with it: several fleets may share a Redis
    spend_log: str = "redis+sqlite"  # redis+sqlite | sqlite (with a url); sqlite without
    sync_ms: float = 250.0  # how often fleet views (breakers, latency, spend) are read

    @property
    def shared(self) -> bool:
        return self.url is not None

    def display(self) -> str:
        """The URL with any password masked: for status(), logs and errors."""
        return "memory" if self.url is None else mask_url(self.url.reveal())


def mask_url(url: str) -> str:
    """redis://user:pass@host:6379/0 -> redis://user:****@host:6379/0."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    auth, _, host = rest.rpartition("@")
    user = auth.split(":", 1)[0] if ":" in auth else ""
    return f"{scheme}://{user}:****@{host}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Top-level `settings:` block."""

    default_max_tokens: int = 256  # output size sent when nothing else names one
    deadline: float | None = 120.0  # seconds per request, retries and fallbacks included
    # SQLite file for spend; None: $ROUTER_USAGE_DB or ~/.local/state/router/usage.sqlite;
    # ":memory:" keeps it in memory only.
    usage_db: str | None = None
    debounce_ms: int = 100
    # True: a model of unknown price is not dropped by `max_cost` or a budget.
    allow_unknown_prices: bool = False
    # Count input tokens with the model's own tokenizer / the provider's counting
    # endpoint before deciding (I/O on the decision path); off: a fast estimate.
    exact_tokens: bool = False
    request_log: RequestLogSettings | None = None
    cache: CachePolicy | None = None  # for every rule that does not say otherwise
    cache_store: CacheStore = CacheStore()
    state: StateSettings = StateSettings()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key of `server.keys`: who may call `router serve`, and what they may use."""

    name: str
    key: Secret
    models: frozenset[str] | None = None  # None: every model
    rules: frozenset[str] | None = None  # None: every rule
    daily: float | None = None  # USD per UTC day
    monthly: float | None = None
    rpm: int | None = None
    where: Where = Where()
    admin: bool = False  # may open the web console (/ui) and its /v1/router/... API


@dataclass(frozen=True, slots=True)
class MetricsAccess:
    """`server.metrics`: the Prometheus scrape at `GET /metrics`."""

    enabled: bool = True
    # True: a key of `server.keys` is needed when there are any (as for /v1/models);
    # False: open to whoever reaches the port (a scraper on a private network).
    key_required: bool = True


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Top-level `server:` block, read by `router serve`."""

    keys: tuple[ApiKey, ...] = ()
    max_body_bytes: int = 4 * 1024 * 1024
    max_concurrent: int = 256
    metrics: MetricsAccess = MetricsAccess()


@dataclass(frozen=True, slots=True)
class Config:
    providers: Mapping[str, ProviderConfig]
    models: Mapping[str, ModelConfig]
    rules: tuple[RuleConfig, ...]
    use_cases: Mapping[str, UseCaseConfig] = field(default_factory=dict)
    tests: tuple[RoutingTest, ...] = ()
    budgets: tuple[Budget, ...] = ()
    settings: Settings = Settings()
    server: ServerConfig = ServerConfig()
    files: tuple[str, ...] = ()  # absolute paths the config was read from
    sha256: str = ""  # over all files, in order


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Secret):
        return ("secret", value.reveal())
    return value

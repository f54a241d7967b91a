"""Prometheus metrics of a Router (the `metrics` extra: prometheus-client).

    from router.observe.metrics import RouterMetrics
    metrics = RouterMetrics.for_router(router)          # its own CollectorRegistry
    body, content_type = metrics.render()               # or mount metrics.asgi_app()

Every label value comes from a closed set: rule, model and provider names from the
config, outcomes and error kinds from fixed lists. No prompt, key or free text is
ever a label. A model or rule the config does not know is counted as "other".

Several worker processes: set PROMETHEUS_MULTIPROC_DIR to an empty directory before
the workers start (prometheus-client's multiprocess mode). Each worker then writes
its samples to files there and `render()` in any worker adds them all up; gauges are
combined per metric (`livemax` for circuit state and config version, `livemin` for
budget remaining). Call `mark_process_dead(pid)` from the server's worker-exit hook.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol

from router.errors import MissingDependency
from router.observe.events import CACHE_RESULTS, OUTCOMES, RequestEnded
from router.observe.request_log import rejection_kind

if TYPE_CHECKING:
    from router.config.model import Config
    from router.runtime.reload.changes import ReloadEvent


class Router(Protocol):
    """What metrics read of a `router.Router` (observe sits below the runtime)."""

    @property
    def config(self) -> Config: ...

    def status(self) -> Any: ...

    def add_observer(self, observer: Any) -> Any: ...


OTHER = "other"
NONE = "none"
CIRCUIT_LEVELS = {"closed": 0.0, "half_open": 1.0, "half-open": 1.0, "open": 2.0}
ERROR_KINDS = frozenset(
    {
        "timeout",
        "rate_limited",
        "unavailable",
        "auth",
        "bad_request",
        "context_overflow",
        "skipped",
        "error",
    }
)
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise MissingDependency("prometheus-client", "metrics") from None
    return prometheus_client


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class RouterMetrics:
    """An observer that counts requests, tokens, cost, failures and reloads."""

    def __init__(self, registry: Any | None = None, *, namespace: str = "router") -> None:
        prom = _prometheus()
        self._prom = prom
        self.registry = registry if registry is not None else prom.CollectorRegistry()
        self._router: Router | None = None
        self._rules: frozenset[str] = frozenset()
        self._models: frozenset[str] = frozenset()
        self._providers: frozenset[str] = frozenset()
        ns, reg = namespace, self.registry
        C, H, G = prom.Counter, prom.Histogram, prom.Gauge
        self.requests = C(
            "requests",
            "Requests by rule, model, provider and outcome.",
            ["rule", "model", "provider", "outcome"],
            namespace=ns,
            registry=reg,
        )
        self.duration = H(
            "request_duration_seconds",
            "Time from route() to the answer (or the error).",
            ["rule", "model"],
            namespace=ns,
            registry=reg,
            buckets=DURATION_BUCKETS,
        )
        self.ttft = H(
            "time_to_first_token_seconds",
            "Streams: time from route() to the first text.",
            ["rule", "model"],
            namespace=ns,
            registry=reg,
            buckets=TTFT_BUCKETS,
        )
        self.tokens = C(
            "tokens",
            "Tokens billed, by model and direction (input, output).",
            ["model", "direction"],
            namespace=ns,
            registry=reg,
        )
        self.cost = C(
            "cost_usd",
            "USD spent, by model and rule.",
            ["model", "rule"],
            namespace=ns,
            registry=reg,
        )
        self.attempt_failures = C(
            "attempt_failures",
            "Failed or skipped tries, by model and kind of failure.",
            ["model", "kind"],
            namespace=ns,
            registry=reg,
        )
        self.rejections = C(
            "rejections",
            "Candidates left out of a decision, by model and kind of reason.",
            ["model", "kind"],
            namespace=ns,
            registry=reg,
        )
        self.fallbacks = C(
            "fallbacks",
            "Requests served by another model than the one decided on.",
            ["rule"],
            namespace=ns,
            registry=reg,
        )
        self.cache = C(
            "cache_requests",
            "Cacheable requests by result (hit, miss).",
            ["result"],
            namespace=ns,
            registry=reg,
        )
        self.reloads = C(
            "reloads",
            "Config reloads by result (ok, failed).",
            ["result"],
            namespace=ns,
            registry=reg,
        )
        self.config_version = G(
            "config_version",
            "The config version serving.",
            namespace=ns,
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.circuit = G(
            "circuit_state",
            "Circuit breaker per model: 0 closed, 1 half-open, 2 open.",
            ["model"],
            namespace=ns,
            registry=reg,
            multiprocess_mode="livemax",
        )
        self.budget_remaining = G(
            "budget_remaining_usd",
            "USD left in each budget's current period.",
            ["scope", "name", "period"],
            namespace=ns,
            registry=reg,
            multiprocess_mode="livemin",
        )
        self.rate_limit_waits = G(
            "rate_limit_waits",
            "Requests that waited for a rate-limit slot (per model).",
            ["model"],
            namespace=ns,
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.rate_limit_wait_seconds = G(
            "rate_limit_wait_seconds",
            "Seconds requests slept for a rate-limit slot.",
            ["model"],
            namespace=ns,
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.cache_up = G(
            "cache_backend_up",
            "The response cache's store answers: 1, or 0 (Redis away: every lookup a miss).",
            namespace=ns,
            registry=reg,
            multiprocess_mode="livemin",
        )
        # Labelled children by label values: prometheus-client's labels() validates and
        # locks on every call; this dict makes the request path a lookup.
        self._children: dict[tuple[Any, ...], Any] = {}
        for result in CACHE_RESULTS:
            self.cache.labels(result)  # present at 0 before the first request

    @classmethod
    def for_router(cls, router: Router, registry: Any | None = None) -> RouterMetrics:
        """Metrics observing `router`; gauges read its state at each `render()`."""
        metrics = cls(registry)
        metrics.bind(router)
        router.add_observer(metrics)
        return metrics

    def bind(self, router: Router) -> None:
        self._router = router
        self._learn(router)
        self.config_version.set(router.status().config_version)

    def _learn(self, router: Router) -> None:
        """Names the labels may take: those of the config serving."""
        cfg = router.config
        self._rules = frozenset(r.name for r in cfg.rules)
        self._models = frozenset(cfg.models)
        self._providers = frozenset(cfg.providers)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def _rule(self, name: str | None) -> str:
        if name is None:
            return NONE
        return name if not self._rules or name in self._rules else OTHER

    def _model(self, name: str | None) -> str:
        if name is None:
            return NONE
        return name if not self._models or name in self._models else OTHER

    def _provider(self, name: str | None) -> str:
        if name is None:
            return NONE
        return name if not self._providers or name in self._providers else OTHER

    # -- Observer -------------------------------------------------------------------
    def request_ended(self, event: RequestEnded) -> None:
        res, d = event.result, event.decision
        if res is not None:
            rule, model, provider = (
                self._rule(res.rule),
                self._model(res.model),
                self._provider(res.provider),
            )
        elif d is not None:
            rule, model, provider = (
                self._rule(d.rule),
                self._model(d.model),
                self._provider(d.provider),
            )
        else:
            rule = model = provider = NONE
        outcome = event.outcome if event.outcome in OUTCOMES else "error"
        child = self._child
        child(self.requests, rule, model, provider, outcome).inc()
        child(self.duration, rule, model).observe(event.duration_s)
        if event.ttft_s is not None:
            child(self.ttft, rule, model).observe(event.ttft_s)
        if event.cache in CACHE_RESULTS:
            child(self.cache, event.cache).inc()
        if res is not None and not res.cached:  # a hit is not billed
            child(self.tokens, model, "input").inc(res.usage.input_tokens)
            child(self.tokens, model, "output").inc(res.usage.output_tokens)
            if res.cost_usd:
                child(self.cost, model, rule).inc(res.cost_usd)
            if d is not None and d.model is not None and res.model != d.model:
                child(self.fallbacks, self._rule(d.rule)).inc()
        attempts = res.attempts if res is not None else getattr(event.error, "attempts", ())
        for a in attempts:
            kind = a.error if a.error in ERROR_KINDS else OTHER
            child(self.attempt_failures, self._model(a.model), kind).inc()
        if d is not None and d.rejected:
            for m, why in d.rejected.items():
                child(self.rejections, self._model(m), rejection_kind(why)).inc()

    def reloaded(self, event: ReloadEvent) -> None:
        self.reloads.labels("ok" if event.ok else "failed").inc()
        if event.ok:
            self.config_version.set(event.version)
            if self._router is not None:
                self._learn(self._router)

    def close(self) -> None:
        pass

    # -- exposition -------------------------------------------------------------------
    def refresh(self) -> None:
        """Set the gauges that show live state: circuits and budgets."""
        router = self._router
        if router is None:
            return
        status = router.status()
        state = status.get("state") or {}
        for name, m in (state.get("models") or {}).items():
            level = CIRCUIT_LEVELS.get(str((m.get("breaker") or {}).get("state")), 0.0)
            self.circuit.labels(self._model(name)).set(level)
            count, seconds = m.get("rate_limit_waits") or (0, 0.0)
            if count:
                self.rate_limit_waits.labels(self._model(name)).set(count)
                self.rate_limit_wait_seconds.labels(self._model(name)).set(seconds)
        for b in state.get("budgets") or []:
            self.budget_remaining.labels(
                str(b["scope"]), str(b["name"] or "-"), str(b["period"])
            ).set(float(b["remaining_usd"]))
        self.config_version.set(status["config_version"])
        cache = status.get("cache")
        if cache:
            self.cache_up.set(1.0 if cache.get("connected", True) else 0.0)

    def exposition_registry(self) -> Any:
        """What to scrape: this registry, or every worker's samples in multiprocess mode."""
        if not multiprocess():
            return self.registry
        from prometheus_client import multiprocess as mp

        merged = self._prom.CollectorRegistry()
        mp.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return merged

    def render(self) -> tuple[bytes, str]:
        """(body, content type) of a scrape in the Prometheus text format."""
        self.refresh()
        body: bytes = self._prom.generate_latest(self.exposition_registry())
        return body, str(self._prom.CONTENT_TYPE_LATEST)

    def asgi_app(self) -> Any:
        """An ASGI app serving the scrape (mount it at /metrics)."""
        render = self.render

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            body, ctype = render()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", ctype.encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})

        return app


def mark_process_dead(pid: int) -> None:
    """Multiprocess mode: drop a dead worker's live gauges (call from worker exit)."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)  # type: ignore[no-untyped-call]


__all__ = ["RouterMetrics", "mark_process_dead", "multiprocess"]

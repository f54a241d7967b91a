"""Prometheus metrics: real routes over HTTP, a real scrape parsed by the client's parser."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from prometheus_client.parser import text_string_to_metric_families

from router import NoRouteError, Router
from router.errors import MissingDependency
from router.observe.events import OUTCOMES
from router.observe.metrics import RouterMetrics
from router.testing import server_error
from tests.observe.conftest import CANARY


def scrape(metrics: RouterMetrics) -> dict[str, list]:
    """Samples by sample name (counters' families drop `_total`; samples keep it)."""
    body, ctype = metrics.render()
    assert ctype.startswith("text/plain")
    text = body.decode()
    samples: dict[str, list] = {"_text": text}  # type: ignore[dict-item]
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append(s)
    return samples


def value(samples, metric: str, /, **labels) -> float:
    found = [s.value for s in samples.get(metric, []) if s.labels == labels]
    assert len(found) == 1, (metric, labels, samples.get(metric))
    return found[0]


def test_requests_tokens_cost_failures_and_cache_show_in_a_scrape(write_config, fake):
    cfg = write_config("  cache: {ttl: 600}")
    with Router.from_config(cfg) as r:
        metrics = RouterMetrics.for_router(r)
        ok = r.route("secret prompt zebra", temperature=0)
        r.route("secret prompt zebra", temperature=0)  # a cache hit
        fake.enqueue(server_error(503))
        fell = r.route("fix it", use_case="coding", cache=False)
        with pytest.raises(NoRouteError):
            r.route("x " * 20000)
        streamed = list(r.route("stream it", stream=True, cache=False))[-1].result
        f = scrape(metrics)
    assert (
        value(
            f, "router_requests_total", rule="default", model="small", provider="fake", outcome="ok"
        )
        == 3
    )
    assert (
        value(
            f, "router_requests_total", rule="coding", model="small", provider="fake", outcome="ok"
        )
        == 1
    )
    assert (
        value(
            f,
            "router_requests_total",
            rule="none",
            model="none",
            provider="none",
            outcome="no_route",
        )
        == 1
    )
    assert value(f, "router_cache_requests_total", result="hit") == 1
    assert value(f, "router_cache_requests_total", result="miss") == 1
    assert value(f, "router_attempt_failures_total", model="large", kind="unavailable") == 1
    assert value(f, "router_fallbacks_total", rule="coding") == 1
    assert value(f, "router_rejections_total", model="small", kind="context") == 1
    # Billed tokens only: the cache hit is not billed.
    billed = (ok, fell, streamed)
    assert value(f, "router_tokens_total", model="small", direction="input") == sum(
        x.usage.input_tokens for x in billed
    )
    assert value(f, "router_tokens_total", model="small", direction="output") == sum(
        x.usage.output_tokens for x in billed
    )
    assert value(f, "router_cost_usd_total", model="small", rule="default") == pytest.approx(
        ok.cost_usd + streamed.cost_usd
    )
    assert value(f, "router_request_duration_seconds_count", rule="default", model="small") == 3
    assert value(f, "router_time_to_first_token_seconds_count", rule="default", model="small") == 1
    assert value(f, "router_config_version") == 1
    text = f["_text"]
    assert CANARY not in text and "zebra" not in text and "secret" not in text


def test_label_values_come_from_the_config_and_fixed_sets(write_config, fake):
    with Router.from_config(write_config()) as r:
        metrics = RouterMetrics.for_router(r)
        for i in range(20):
            r.route(f"prompt number {i}", tags=[f"t{i}"], metadata={"user": f"u{i}"})
        f = scrape(metrics)
    allowed = {"small", "large", "coding", "default", "fake", "none", "other", *OUTCOMES}
    values = {
        v
        for samples in f.values()
        if isinstance(samples, list)
        for s in samples
        for k, v in s.labels.items()
        if k in ("rule", "model", "provider", "outcome")
    }
    assert values and values <= allowed


def test_circuit_state_budget_remaining_and_reloads(write_config, fake):
    cfg = write_config()
    text = (
        cfg.read_text().replace(
            "context: 128000,",
            "context: 128000, breaker: {failures: 1, window: 60, cooldown: 600},",
        )
        + "budgets:\n  global: {daily: 5.0}\n"
    )
    cfg.write_text(text)
    with Router.from_config(cfg) as r:
        metrics = RouterMetrics.for_router(r)
        fake.enqueue(server_error(503))
        res = r.route("fix it", use_case="coding")
        f = scrape(metrics)
        assert value(f, "router_circuit_state", model="large") == 2
        assert value(f, "router_circuit_state", model="small") == 0
        assert value(
            f, "router_budget_remaining_usd", scope="global", name="-", period="day"
        ) == pytest.approx(5.0 - res.cost_usd)
        cfg.write_text(text.replace("daily: 5.0", "daily: 6.0"))
        assert r.reload().ok
        cfg.write_text("rules: [oops")
        assert not r.reload().ok
        f = scrape(metrics)
    assert value(f, "router_reloads_total", result="ok") == 1
    assert value(f, "router_reloads_total", result="failed") == 1
    assert value(f, "router_config_version") == 2


WORKER = textwrap.dedent(
    """
    import sys
    from router import Router
    from router.observe.metrics import RouterMetrics
    with Router.from_config(sys.argv[1]) as r:
        RouterMetrics.for_router(r)
        for i in range(int(sys.argv[2])):
            r.route(f"hello {i}")
    """
)

MOCK_CONFIG = """
providers:
  echo: {type: mock}
models:
  m: {provider: echo, context: 4096, cost: {input: 1, output: 1}}
rules:
  - {name: default, targets: [m]}
settings:
  usage_db: ":memory:"
"""


def test_worker_processes_add_up_in_multiprocess_mode(tmp_path, monkeypatch):
    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    cfg = tmp_path / "r.yaml"
    cfg.write_text(MOCK_CONFIG)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(prom_dir), "PYTHONPATH": os.getcwd()}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(cfg), str(n)], env=env) for n in (3, 4)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    assert list(prom_dir.glob("counter_*.db"))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(prom_dir))
    with Router.from_config(cfg) as r:
        f = scrape(RouterMetrics.for_router(r))
    assert (
        value(f, "router_requests_total", rule="default", model="m", provider="echo", outcome="ok")
        == 7
    )
    assert value(f, "router_request_duration_seconds_count", rule="default", model="m") == 7


def test_without_prometheus_client_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(MissingDependency, match=r"llm-router\[metrics\]"):
        RouterMetrics()


def test_rate_limit_waits_are_counted(tmp_path, monkeypatch):
    from router.runtime.state import live as live_module
    from router.runtime.state.ratelimit import RateLimiter

    slept: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    def limiter(limits, **_):
        return RateLimiter(limits, clock=lambda: now[0], sleep=sleep)

    monkeypatch.setattr(live_module, "RateLimiter", limiter)
    cfg = tmp_path / "r.yaml"
    cfg.write_text(
        MOCK_CONFIG.replace(
            "cost: {input: 1, output: 1}}", "cost: {input: 1, output: 1}, rpm: 1}"
        ).replace("targets: [m]}", "targets: [m], on_rate_limit: wait}")
    )
    assert "rpm: 1" in cfg.read_text() and "on_rate_limit: wait" in cfg.read_text()
    with Router.from_config(cfg) as r:
        metrics = RouterMetrics.for_router(r)
        for _ in range(3):
            r.route("hi")
        f = scrape(metrics)
    assert value(f, "router_rate_limit_waits", model="m") == 2
    assert value(f, "router_rate_limit_wait_seconds", model="m") == pytest.approx(sum(slept))
    assert sum(slept) == pytest.approx(120, abs=1)  # 1 rpm: a slot a minute


async def test_the_asgi_app_serves_the_scrape(tmp_path):
    cfg = tmp_path / "r.yaml"
    cfg.write_text(MOCK_CONFIG)
    with Router.from_config(cfg) as r:
        app = RouterMetrics.for_router(r).asgi_app()
        r.route("hi")
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await app({"type": "http", "method": "GET", "path": "/metrics"}, receive, send)
    start, body = sent
    assert start["status"] == 200
    assert dict(start["headers"])[b"content-type"].startswith(b"text/plain")
    families = {f.name for f in text_string_to_metric_families(body["body"].decode())}
    assert "router_requests" in families

"""What seeing requests costs: `python bench/overhead.py --observe`.

The same fake server (own process) as `bench/overhead.py`, the native `type: openai`
adapter, in one run, interleaved blocks:

    plain     router.route(), no request log, no metrics, no tracing: the native
              adapter's per-request time
    observed  router.route() with settings.request_log (a real file) + RouterMetrics
    traced    as observed, plus an OpenTelemetry SDK tracer recording every span
    litellm   litellm.completion(), for scale

Target: (observed - plain) <= 5% of plain. Then the observers alone (a real
request's event replayed: no network in the timing), and the response cache: a miss
(a new prompt each time: looked up, called, kept) against a hit (the same prompt), in
memory and in Redis (`backend: redis`, a loopback redis-server started here).
"""

from __future__ import annotations

import gc
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openai_overhead import CONFIG as OPENAI_CONFIG
from overhead import KEY, MODEL, PROMPT, measure, pct
from state import start_redis


def run_observe(start_server: Callable[[], tuple[Any, str]], n: int, rounds: int) -> None:
    os.environ["ROUTER_TRACING"] = "off"  # tracing only where this bench adds it
    import litellm

    from router import Router
    from router.observe.metrics import RouterMetrics

    proc, url = start_server()
    base = url + "/v1"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            plain_cfg = work / "plain.yaml"
            plain_cfg.write_text(
                OPENAI_CONFIG.format(type="openai", key=KEY, base=base, model="gpt-4o-mini")
            )
            logged_cfg = work / "logged.yaml"
            logged_cfg.write_text(
                plain_cfg.read_text() + "settings:\n  request_log: requests.jsonl\n"
            )
            cached_cfg = work / "cached.yaml"
            cached_cfg.write_text(plain_cfg.read_text() + "settings:\n  cache: {ttl: 3600}\n")

            plain = Router.from_config(plain_cfg)
            observed = Router.from_config(logged_cfg)
            metrics = RouterMetrics.for_router(observed)
            traced = Router.from_config(logged_cfg)
            RouterMetrics.for_router(traced)
            traced.add_observer(_sdk_tracer())
            messages = [{"role": "user", "content": PROMPT}]
            paths: dict[str, Callable[[], object]] = {
                "plain route()": lambda: plain.route(PROMPT),
                "observed route()": lambda: observed.route(PROMPT),
                "traced route()": lambda: traced.route(PROMPT),
                "litellm.completion": lambda: litellm.completion(
                    model=MODEL, messages=messages, api_key=KEY, api_base=base
                ),
            }
            for fn in paths.values():
                for _ in range(100):
                    fn()
            gc.collect()
            times = measure(paths, n, rounds)
            body, _ = metrics.render()
            lines = (work / "requests.jsonl").read_text().count("\n")
            per_event, per_line = _observer_cost(observed, n * 10)

            cache = Router.from_config(cached_cfg)
            fresh = itertools.count()
            cache.route(PROMPT)  # the hit's answer is kept
            cache_paths: dict[str, Callable[[], object]] = {
                "cache miss": lambda: cache.route(f"{PROMPT} {next(fresh)}"),
                "cache hit": lambda: cache.route(PROMPT),
            }
            assert cache.route(PROMPT).cached
            redis_proc, redis_url = start_redis()
            redis_cfg = work / "redis-cached.yaml"
            redis_cfg.write_text(
                plain_cfg.read_text()
                + f"settings:\n  cache: {{ttl: 3600, backend: redis, url: '{redis_url}'}}\n"
            )
            rcache = Router.from_config(redis_cfg)
            rcache.route(PROMPT)
            assert rcache.route(PROMPT).cached
            cache_paths["redis cache miss"] = lambda: rcache.route(f"{PROMPT} r{next(fresh)}")
            cache_paths["redis cache hit"] = lambda: rcache.route(PROMPT)
            try:
                cache_times = measure(cache_paths, n, rounds)
            finally:
                redis_proc.terminate()
                redis_proc.wait(timeout=10)
            for r in (plain, observed, traced, cache, rcache):
                r.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    print(f"{n} requests per path, {rounds} interleaved rounds, fake server at {url}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"request log: {lines} lines written; metrics scrape: {len(body)} bytes\n")
    stats = _table(times)
    plain_s, obs_s, traced_s, _ = (stats[k] for k in times)
    native_s = plain_s  # the native adapter's per-request time
    for label, x in (("observed", obs_s), ("traced", traced_s)):
        print(
            f"{label} - plain: mean {1e3 * (x[0] - plain_s[0]):+.3f} ms, "
            f"cpu {1e3 * (x[3] - plain_s[3]):+.3f} ms = "
            f"{(x[0] - plain_s[0]) / native_s[0]:+.1%} (mean), "
            f"{(x[3] - plain_s[3]) / native_s[3]:+.1%} (cpu) of native's per-request time"
            + ("   (target <= 5%)" if label == "observed" else "")
        )
    print(
        f"on the request path (metrics + handing the line over), per request:"
        f" {per_event * 1e6:.1f} us = {per_event / native_s[3]:.2%} of native's cpu ms"
        "   (target <= 5%)"
    )
    print(
        f"off it (the log's writer thread: make and write one line): {per_line * 1e6:.1f} us"
        f" = {per_line / native_s[3]:.2%} of native's cpu ms"
    )
    print()
    cstats = _table(cache_times)
    for kind in ("cache", "redis cache"):
        miss, hit = cstats[f"{kind} miss"], cstats[f"{kind} hit"]
        print(f"{kind} hit / miss: mean {hit[0] / miss[0]:.3f}  ({miss[0] / hit[0]:.0f}x faster)")


def _table(times: dict[str, tuple[list[float], list[float]]]) -> dict[str, tuple[float, ...]]:
    print(f"{'path':24} {'mean ms':>9} {'p50 ms':>9} {'p99 ms':>9} {'cpu ms':>9}")
    out = {}
    for name, (walls, cpus) in times.items():
        walls.sort()
        row = (statistics.fmean(walls), pct(walls, 50), pct(walls, 99), statistics.median(cpus))
        out[name] = row
        print(f"{name:24}" + "".join(f" {v * 1e3:9.3f}" for v in row))
    return out


def _observer_cost(router: Any, k: int) -> tuple[float, float]:
    """Seconds of this thread's CPU per request the observers take on the request path,
    and per line in the log's writer thread: a real request's event replayed k times
    (no network in the timing)."""
    seen: list[Any] = []

    class Capture:
        def request_ended(self, event: Any) -> None:
            seen.append(event)

        def reloaded(self, event: Any) -> None:
            pass

        def close(self) -> None:
            pass

    router.add_observer(Capture())
    router.route(PROMPT)
    observers = router._hooks.observers
    event = seen[0]
    log = router._hooks.request_log
    log.flush()
    t0 = time.thread_time()
    for _ in range(k):
        observers.request_ended(event)
    on_path = (time.thread_time() - t0) / k
    log.flush(timeout=120)
    t0 = time.thread_time()
    for _ in range(k):
        log.write(event)
    return on_path, (time.thread_time() - t0) / k


def _sdk_tracer() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from router.observe.tracing import RouterTracer

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return RouterTracer(provider)


__all__ = ["run_observe"]

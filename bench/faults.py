"""Failure handling under injected faults: success rate, latency, calls per request.

Two fake OpenAI-compatible servers, each in its own process (so their work does not
share this process's GIL): `flaky` fails a share of its calls (429 with Retry-After: 1,
500, dropped connections, and replies slower than the 0.25 s timeout, in equal parts)
and `healthy` never fails. Each request asks for `flaky` first with `healthy` as the
fallback, at 0%, 10%, 30% and 60% fault rates, through:

    router             router.Router: retries 2 (backoff 10 ms, max 100 ms, full jitter),
                       breaker 5 failures / 10 s, cooldown 5 s; fallback to the next target;
                       a 429's Retry-After keeps the model out of routing that long
    router -breaker    the same with the breaker never opening: retries and fallbacks only
    litellm.Router     the same two deployments, num_retries=2, fallbacks a -> b,
                       allowed_fails=5, cooldown_time=5, timeout 0.25 s (its defaults else)
    litellm -cooldown  the same with disable_cooldowns=True

Both run the same number of requests from the same number of threads against fresh
servers seeded alike. calls/req is counted by the servers: every HTTP call made.

    .venv/bin/python bench/faults.py [-n 400] [--threads 8] [--rates 0,0.1,0.3,0.6]
    .venv/bin/python bench/faults.py --no-baseline
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

KEY = "sk-bench-0123456789abcdef"
MODEL = "openai/gpt-4o-mini"
TIMEOUT = 0.25
KINDS = ("rate_limited", "server_error", "disconnect", "slow")

# A fake server in a child process; "count" on stdin answers the calls it has seen.
SERVER = """
import sys
from router.testing import FakeProviderServer
rate, seed = float(sys.argv[1]), int(sys.argv[2])
kinds = tuple(sys.argv[3].split(",")) if sys.argv[3] else ("server_error",)
fake = FakeProviderServer(reply=sys.argv[4], fault_rate=rate, fault_kinds=kinds, seed=seed,
                          fault_delay=0.0)
fake.start()
print(fake.base_url, flush=True)
for line in sys.stdin:
    print(sum(r.method == "POST" for r in fake.requests), flush=True)
fake.stop()
"""

CONFIG = """\
providers:
  flaky: {{type: litellm, api_key: "{key}", api_base: "{flaky}", timeout: {timeout},
           retries: 2, backoff: 0.01, max_backoff: 0.1}}
  healthy: {{type: litellm, api_key: "{key}", api_base: "{healthy}", timeout: 5,
             retries: 2, backoff: 0.01, max_backoff: 0.1}}
models:
  a: {{provider: flaky, model: {model}, cost: {{input: 0.15, output: 0.6}},
       breaker: {{failures: {failures}, window: 10, cooldown: 5}}}}
  b: {{provider: healthy, model: {model}, cost: {{input: 0.15, output: 0.6}}}}
rules:
  - {{name: default, targets: [a, b]}}
settings:
  usage_db: {db}
"""


class Server:
    def __init__(self, rate: float, seed: int, reply: str) -> None:
        kinds = ",".join(KINDS)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(rate), str(seed), kinds, reply],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.proc.kill()
            raise SystemExit(f"fake server did not start: {self.base_url!r}")

    def calls(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Row:
    ok: int
    n: int
    latencies: list[float]
    calls: int
    elapsed: float

    def cells(self) -> list[str]:
        lat = sorted(self.latencies) or [float("nan")]
        return [
            f"{100 * self.ok / self.n:6.1f}%",
            f"{pct(lat, 50) * 1e3:8.1f}",
            f"{pct(lat, 99) * 1e3:8.1f}",
            f"{self.calls / self.n:6.2f}",
        ]


def pct(values: list[float], p: float) -> float:
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def drive(call: Callable[[int], Any], n: int, threads: int) -> tuple[int, list[float], float]:
    """n calls from `threads` threads: successes, the latency of every call, wall time."""
    latencies: list[float] = []
    ok = 0
    lock = threading.Lock()
    counter = iter(range(n))

    def worker() -> None:
        nonlocal ok
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            t0 = time.perf_counter()
            try:
                call(i)
                good = True
            except Exception:
                good = False
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                ok += good

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return ok, latencies, time.perf_counter() - started


def run_router(
    flaky: Server, healthy: Server, tmp: Path, n: int, threads: int, breaker: bool = True
) -> Row:
    from router import Router

    path = tmp / f"router-{time.monotonic_ns()}.yaml"
    path.write_text(
        CONFIG.format(
            key=KEY,
            flaky=flaky.base_url,
            healthy=healthy.base_url,
            timeout=TIMEOUT,
            model=MODEL,
            failures=5 if breaker else 10**9,
            db=tmp / f"usage-{time.monotonic_ns()}.db",
        )
    )
    with Router.from_config(path) as r:
        before = flaky.calls() + healthy.calls()
        ok, lat, elapsed = drive(lambda i: r.route(f"request {i}"), n, threads)
        calls = flaky.calls() + healthy.calls() - before
    return Row(ok, n, lat, calls, elapsed)


def run_litellm(flaky: Server, healthy: Server, n: int, threads: int, cooldown: bool = True) -> Row:
    import litellm

    def params(base: str) -> dict[str, Any]:
        return {"model": MODEL, "api_key": KEY, "api_base": base, "timeout": TIMEOUT}

    theirs = litellm.Router(
        model_list=[
            {"model_name": "a", "litellm_params": params(flaky.base_url)},
            {"model_name": "b", "litellm_params": {**params(healthy.base_url), "timeout": 5}},
        ],
        fallbacks=[{"a": ["b"]}],
        num_retries=2,
        allowed_fails=5,
        cooldown_time=5,
        disable_cooldowns=not cooldown,
    )

    def call(i: int) -> Any:
        return theirs.completion(model="a", messages=[{"role": "user", "content": f"req {i}"}])

    before = flaky.calls() + healthy.calls()
    ok, lat, elapsed = drive(call, n, threads)
    return Row(ok, n, lat, flaky.calls() + healthy.calls() - before, elapsed)


def warm_up(healthy: Server, tmp: Path) -> None:
    """Import litellm and make one call through each path, untimed."""
    flaky = Server(0.0, 0, "warm")
    try:
        run_router(flaky, healthy, tmp, 4, 1)
        run_litellm(flaky, healthy, 4, 1)
    finally:
        flaky.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=400, help="requests per path and rate")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rates", default="0,0.1,0.3,0.6")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-baseline", action="store_true", help="skip litellm.Router")
    args = parser.parse_args()
    rates = [float(x) for x in args.rates.split(",")]
    import litellm

    print(
        f"{args.n} requests per path and rate, {args.threads} threads; flaky faults: "
        f"{', '.join(KINDS)} (equal parts; 429 says Retry-After: 1; timeout {TIMEOUT}s)"
    )
    print(f"python {sys.version.split()[0]}, litellm {_version(litellm)}, {os.cpu_count()} CPUs")
    head = (
        f"{'faults':>6} | {'path':<17} {'success':>7} {'p50 ms':>8} {'p99 ms':>8} {'calls/req':>9}"
    )
    print(head)
    print("-" * len(head))
    healthy = Server(0.0, 0, "healthy answer")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            warm_up(healthy, Path(tmp))
            n, th, base = args.n, args.threads, Path(tmp)
            for rate in rates:
                paths: list[tuple[str, Callable[[Server], Row]]] = [
                    ("router", lambda f: run_router(f, healthy, base, n, th)),
                    ("router -breaker", lambda f: run_router(f, healthy, base, n, th, False)),
                ]
                if not args.no_baseline:
                    paths += [
                        ("litellm.Router", lambda f: run_litellm(f, healthy, n, th)),
                        ("litellm -cooldown", lambda f: run_litellm(f, healthy, n, th, False)),
                    ]
                for name, run in paths:
                    # A fresh flaky server per path, seeded alike: the same fault sequence.
                    flaky = Server(rate, args.seed, "flaky answer")
                    try:
                        row = run(flaky)
                    finally:
                        flaky.close()
                    cells = row.cells()
                    print(
                        f"{rate:>6.0%} | {name:<17} {cells[0]:>7} {cells[1]:>8} {cells[2]:>8}"
                        f" {cells[3]:>9}",
                        flush=True,
                    )
    finally:
        healthy.close()


def _version(mod: Any) -> str:
    try:
        from importlib.metadata import version

        return version("litellm")
    except Exception:
        return str(getattr(mod, "__version__", "?"))


if __name__ == "__main__":
    main()

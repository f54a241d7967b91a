"""Per-request overhead of the router's litellm path against litellm alone.

The same N requests, in one run, to one fake OpenAI-compatible server (its own
process, so its work does not share this process's GIL), through:

    a  router.Router.route()        YAML config: one litellm provider, one model, one rule
    b  litellm.completion()         the bare call a litellm user writes
    c  litellm.Router.completion()  litellm's own router, the same deployment
    d  httpx.Client.post()          raw HTTP: the floor

Paths are warmed up, then run in interleaved blocks (the order rotating every
round) so that drift in machine load spreads evenly over all four.

    python bench/overhead.py -n 2000
    python bench/overhead.py --settings     # what each litellm setting of the adapter buys
    python bench/overhead.py --openai       # type: openai against raw httpx and litellm:
                                            # sync, async x200, streaming, first request
    python bench/overhead.py --observe      # request log + metrics cost; cache hit vs miss
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# What the adapter sets before litellm loads; set here too because this script imports
# litellm itself (paths b and c), possibly first.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

KEY = "sk-bench-0123456789abcdef"
MODEL = "openai/gpt-4o-mini"
PROMPT = "Say hello"

CONFIG = """\
providers:
  fake: {{type: litellm, api_key: "{key}", api_base: "{base}"}}
models:
  m:
    provider: fake
    model: {model}
    cost: {{input: 0.15, output: 0.60}}
rules:
  - {{name: default, targets: [m]}}
"""


def start_server(reply: str | None = None) -> tuple[subprocess.Popen[str], str]:
    extra = ["--reply", reply] if reply is not None else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "router.testing", "--port", "0", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    if not match:
        proc.kill()
        raise SystemExit(f"fake server did not start: {line!r}")
    return proc, match.group(0)


def build_paths(url: str, tmp: Path) -> dict[str, Callable[[], object]]:
    # The adapter sets litellm up (local price map, quiet loggers) before litellm loads;
    # b and c then run in the same process under the same litellm settings.
    import httpx
    import litellm

    import router
    import router.providers.litellm_provider

    base = url + "/v1"
    config = tmp / "bench.yaml"
    config.write_text(CONFIG.format(key=KEY, base=base, model=MODEL))
    ours = router.Router.from_config(str(config))

    messages = [{"role": "user", "content": PROMPT}]
    theirs = litellm.Router(
        model_list=[
            {
                "model_name": "m",
                "litellm_params": {"model": MODEL, "api_key": KEY, "api_base": base},
            }
        ]
    )
    raw = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"})
    body = {"model": "gpt-4o-mini", "messages": messages}

    def a() -> object:
        return ours.route(PROMPT)

    def b() -> object:
        return litellm.completion(model=MODEL, messages=messages, api_key=KEY, api_base=base)

    def c() -> object:
        return theirs.completion(model="m", messages=messages)

    def d() -> object:
        r = raw.post("/chat/completions", json=body)
        r.raise_for_status()
        return r.json()

    return {
        "a router.route": a,
        "b litellm.completion": b,
        "c litellm.Router": c,
        "d raw httpx": d,
    }


def check(paths: dict[str, Callable[[], object]]) -> None:
    """Every path must really get the fake's answer before it is timed."""
    for name, fn in paths.items():
        out = fn()
        text = str(getattr(out, "text", "") or out)
        if "Hello from the fake provider." not in text:
            raise SystemExit(f"{name}: unexpected answer {text[:200]!r}")


Timings = dict[str, tuple[list[float], list[float]]]  # path -> (wall per request, cpu per block)


def measure(paths: dict[str, Callable[[], object]], n: int, rounds: int) -> Timings:
    """Per-request wall times, and this thread's CPU time per request for each block."""
    times: Timings = {name: ([], []) for name in paths}
    names = list(paths)
    per_round = [n // rounds + (1 if i < n % rounds else 0) for i in range(rounds)]
    clock, cpu = time.perf_counter, time.thread_time
    for i, count in enumerate(per_round):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            fn, (walls, cpus) = paths[name], times[name]
            c0 = cpu()
            for _ in range(count):
                t0 = clock()
                fn()
                walls.append(clock() - t0)
            cpus.append((cpu() - c0) / count)
    return times


def pct(sorted_values: list[float], p: float) -> float:
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def report(times: Timings, n: int, rounds: int, url: str) -> None:
    print(f"{n} requests per path, {rounds} interleaved rounds, fake server at {url}")
    print(f"python {sys.version.split()[0]}, litellm {_version('litellm')}, {os.cpu_count()} CPUs")
    print(f"{'path':24} {'mean ms':>9} {'p50 ms':>9} {'p99 ms':>9} {'cpu ms':>9}")
    stats: dict[str, tuple[float, float, float, float]] = {}
    for name, (walls, cpus) in times.items():
        walls.sort()
        row = (statistics.fmean(walls), pct(walls, 50), pct(walls, 99), statistics.median(cpus))
        stats[name] = tuple(v * 1e3 for v in row)  # type: ignore[assignment]
        print(f"{name:24}" + "".join(f" {v:9.3f}" for v in stats[name]))
    a, b, c, d = (stats[k] for k in times)
    print("cpu ms: this thread's CPU time per request (median over blocks): the work done,")
    print("        without the time spent waiting for a core on a busy machine")
    print()
    for label, x, y, target in (("a/b", a, b, "<= 1.05"), ("a/c", a, c, "< 1")):
        print(
            f"{label}  mean {x[0] / y[0]:.3f}  p50 {x[1] / y[1]:.3f}  cpu {x[3] / y[3]:.3f}"
            f"   (target {target})"
        )
    print(
        f"over raw httpx (mean): a +{a[0] - d[0]:.3f} ms, b +{b[0] - d[0]:.3f} ms, "
        f"c +{c[0] - d[0]:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=2000, help="requests per path (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests per path")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved blocks per path")
    parser.add_argument(
        "--settings", action="store_true", help="instead: what each litellm setting buys"
    )
    parser.add_argument(
        "--openai", action="store_true", help="instead: the type openai figures and targets"
    )
    parser.add_argument(
        "--observe", action="store_true", help="instead: request log + metrics; cache hit/miss"
    )
    parser.add_argument("-c", type=int, default=200, help="concurrency of the async figure")
    args = parser.parse_args()
    if args.observe:
        from observe_overhead import run_observe

        run_observe(start_server, n=args.n, rounds=args.rounds)
        return
    if args.openai:
        from openai_overhead import run_openai_figures

        run_openai_figures(start_server, n=args.n, rounds=args.rounds, concurrency=args.c)
        return
    if args.settings:
        from litellm_settings import run_ablation

        run_ablation(start_server, n=args.n, rounds=args.rounds)
        return

    proc, url = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = build_paths(url, Path(tmp))
            check(paths)
            for fn in paths.values():
                for _ in range(args.warmup):
                    fn()
            gc.collect()
            times = measure(paths, args.n, args.rounds)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    report(times, args.n, args.rounds, url)


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()

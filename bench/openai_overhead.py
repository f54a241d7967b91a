"""The figures of the `type: openai` adapter, each beside its baseline and target.

Run through `python bench/overhead.py --openai` (one fake server in its own process,
the same for every path):

    sync     route() via type openai, per request, against raw httpx.Client.post and
             litellm.completion (interleaved blocks)
    async    aroute() x C concurrent via asyncio.gather, req/s, against
             litellm.acompletion and litellm.Router.acompletion at the same concurrency
    stream   time to first chunk and cost per further chunk of route(stream=True)
             against a raw SSE read of the same stream (httpx.Client.stream, each
             `data:` line parsed as JSON: what a user of raw httpx writes)
    first    a fresh process: Router.from_config on an openai-only config, then its
             first route(); the backend's own time is a raw request on a new connection
             made right after, in the same process; and whether litellm was imported
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-bench-0123456789abcdef"
PROMPT = "Say hello"
LONG_REPLY = " ".join(f"word{i}" for i in range(200))

CONFIG = """\
providers:
  fake: {{type: {type}, api_key: "{key}", api_base: "{base}"}}
models:
  m:
    provider: fake
    model: {model}
    cost: {{input: 0.15, output: 0.60}}
rules:
  - {{name: default, targets: [m]}}
"""


def write_config(tmp: Path, name: str, kind: str, base: str) -> str:
    model = "gpt-4o-mini" if kind == "openai" else "openai/gpt-4o-mini"
    path = tmp / name
    path.write_text(CONFIG.format(type=kind, key=KEY, base=base, model=model))
    return str(path)


def ratio_line(label: str, value: float, base: float, target: str, ok: bool) -> str:
    mark = "ok" if ok else "MISSED"
    return f"  {label:44} {value / base:7.3f}x   (target {target}: {mark})"


# -- sync -------------------------------------------------------------------------------------


def sync_figures(base: str, tmp: Path, n: int, rounds: int) -> None:
    import httpx
    import litellm

    import router

    ours = router.Router.from_config(write_config(tmp, "openai.yaml", "openai", base))
    messages = [{"role": "user", "content": PROMPT}]
    raw = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"})
    body = {"model": "gpt-4o-mini", "messages": messages}

    def route() -> object:
        return ours.route(PROMPT).text

    def raw_httpx() -> object:
        r = raw.post("/chat/completions", json=body)
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"]

    def lite() -> object:
        out = litellm.completion(
            model="openai/gpt-4o-mini", messages=messages, api_key=KEY, api_base=base
        )
        return out.choices[0].message.content

    paths: dict[str, Callable[[], object]] = {
        "route() type openai": route,
        "raw httpx.Client.post": raw_httpx,
        "litellm.completion": lite,
    }
    for name, fn in paths.items():
        if "Hello from the fake provider." not in str(fn()):
            raise SystemExit(f"{name}: unexpected answer")
        for _ in range(min(200, n)):
            fn()
    walls: dict[str, list[float]] = {k: [] for k in paths}
    cpus: dict[str, list[float]] = {k: [] for k in paths}
    names = list(paths)
    for i in range(rounds):
        for name in names[i % 3 :] + names[: i % 3]:
            c0 = time.thread_time()
            for _ in range(max(1, n // rounds)):
                t0 = time.perf_counter()
                paths[name]()
                walls[name].append(time.perf_counter() - t0)
            cpus[name].append((time.thread_time() - c0) / max(1, n // rounds))
    print(f"\nsync: {n} requests per path, {rounds} interleaved rounds")
    print(f"  {'path':28} {'mean ms':>9} {'p50 ms':>9} {'cpu ms':>9}")
    stats = {}
    for name in names:
        w = sorted(walls[name])
        stats[name] = (statistics.fmean(w), w[len(w) // 2], statistics.median(cpus[name]))
        print(f"  {name:28}" + "".join(f" {v * 1e3:9.3f}" for v in stats[name]))
    a, h, lt = (stats[k] for k in names)
    print(ratio_line("route(openai) / raw httpx (mean)", a[0], h[0], "<= 1.3", a[0] <= 1.3 * h[0]))
    print(ratio_line("route(openai) / raw httpx (p50)", a[1], h[1], "<= 1.3", a[1] <= 1.3 * h[1]))
    print(ratio_line("route(openai) / litellm.completion (mean)", a[0], lt[0], "<= 0.25",
                     a[0] <= 0.25 * lt[0]))  # fmt: skip
    ours.close()
    raw.close()


# -- async ------------------------------------------------------------------------------------


def async_figures(base: str, tmp: Path, concurrency: int, batches: int) -> None:
    import litellm

    import router

    ours = router.Router.from_config(write_config(tmp, "openai-async.yaml", "openai", base))
    messages = [{"role": "user", "content": PROMPT}]
    theirs = litellm.Router(
        model_list=[
            {
                "model_name": "m",
                "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": KEY, "api_base": base},
            }
        ]
    )

    async def aroute() -> str:
        return str((await ours.aroute(PROMPT)).text)

    async def acompletion() -> str:
        out = await litellm.acompletion(
            model="openai/gpt-4o-mini", messages=messages, api_key=KEY, api_base=base
        )
        return str(out.choices[0].message.content)

    async def router_acompletion() -> str:
        out = await theirs.acompletion(model="m", messages=messages)
        return str(out.choices[0].message.content)

    paths = {
        "aroute() type openai": aroute,
        "litellm.acompletion": acompletion,
        "litellm.Router.acompletion": router_acompletion,
    }

    async def run() -> dict[str, tuple[float, float]]:
        out: dict[str, tuple[float, float]] = {}
        for name, fn in paths.items():
            await asyncio.gather(*[fn() for _ in range(concurrency)])  # warm: open the pool
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(batches):
                got = await asyncio.gather(*[fn() for _ in range(concurrency)])
                if not all("Hello from the fake provider." in g for g in got):
                    raise SystemExit(f"{name}: unexpected answer")
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            total = concurrency * batches
            out[name] = (total / wall, cpu / total)
        return out

    stats = asyncio.run(run())
    print(f"\nasync: {batches} x {concurrency} concurrent requests per path (asyncio.gather)")
    print(f"  {'path':28} {'req/s':>9} {'cpu ms':>9}")
    for name, (rps, cpu) in stats.items():
        print(f"  {name:28} {rps:9.0f} {cpu * 1e3:9.3f}")
    ours_rps = stats["aroute() type openai"][0]
    for other in ("litellm.acompletion", "litellm.Router.acompletion"):
        rps = stats[other][0]
        print(ratio_line(f"aroute(openai) req/s / {other}", ours_rps, rps, ">= 5",
                         ours_rps >= 5 * rps))  # fmt: skip
    ours.close()


# -- streaming --------------------------------------------------------------------------------


def stream_figures(base: str, tmp: Path, n: int) -> None:
    import httpx

    import router

    ours = router.Router.from_config(write_config(tmp, "openai-stream.yaml", "openai", base))
    raw = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"})
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    def via_route() -> tuple[float, float, int, str]:
        t0 = time.perf_counter()
        first = 0.0
        texts = []
        for chunk in ours.route(PROMPT, stream=True):
            if not first and chunk.text:
                first = time.perf_counter()
            texts.append(chunk.text)
        return first - t0, time.perf_counter() - first, len([t for t in texts if t]), "".join(texts)

    def via_raw() -> tuple[float, float, int, str]:
        t0 = time.perf_counter()
        first = 0.0
        texts = []
        with raw.stream("POST", "/chat/completions", json=body) as resp:
            for line in resp.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                choices = chunk.get("choices") or []
                text = (choices[0].get("delta") or {}).get("content") if choices else None
                if text:
                    if not first:
                        first = time.perf_counter()
                    texts.append(text)
        return first - t0, time.perf_counter() - first, len(texts), "".join(texts)

    paths = {"route(stream=True) openai": via_route, "raw httpx SSE read": via_raw}
    for name, fn in paths.items():
        if fn()[3] != LONG_REPLY:
            raise SystemExit(f"{name}: the stream did not join into the reply")
        for _ in range(20):
            fn()
    ttfc: dict[str, list[float]] = {k: [] for k in paths}
    per_chunk: dict[str, list[float]] = {k: [] for k in paths}
    for i in range(n):
        for name in list(paths)[i % 2 :] + list(paths)[: i % 2]:
            first, rest, chunks, _ = paths[name]()
            ttfc[name].append(first)
            per_chunk[name].append(rest / max(1, chunks - 1))
    print(f"\nstreaming: {n} streams per path of {len(LONG_REPLY.split())} text chunks each")
    print(f"  {'path':28} {'first ms':>9} {'per chunk us':>13}")
    med = {k: (statistics.median(ttfc[k]), statistics.median(per_chunk[k])) for k in paths}
    for name, (f, c) in med.items():
        print(f"  {name:28} {f * 1e3:9.3f} {c * 1e6:13.2f}")
    (of, oc), (rf, rc) = med["route(stream=True) openai"], med["raw httpx SSE read"]
    print(ratio_line("time to first chunk: route / raw (median)", of, rf, "<= 1.2", of <= 1.2 * rf))
    print(ratio_line("per chunk: route / raw (median)", oc, rc, "<= 1.2", oc <= 1.2 * rc))
    ours.close()
    raw.close()


# -- first request ----------------------------------------------------------------------------

_FIRST = r"""
import json, sys, time
t0 = time.perf_counter()
import router
t1 = time.perf_counter()
r = router.Router.from_config(sys.argv[1])
t2 = time.perf_counter()
text = r.route("Say hello").text
t3 = time.perf_counter()
assert "Hello from the fake provider." in text, text
from router.providers.http11 import Endpoint
from router.providers.http11_sync import SyncPool
ep = Endpoint.parse(sys.argv[2])
head = ("Host: %s\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\n"
        % ep.host_header).encode()
body = json.dumps({"model": "gpt-4o-mini",
                   "messages": [{"role": "user", "content": "Say hello"}]}).encode()
t4 = time.perf_counter()
SyncPool(ep).request("POST", ep.prefix + "/chat/completions", head, body, 30)
t5 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "from_config": t2 - t1, "first": t3 - t2,
                  "backend": t5 - t4, "litellm": "litellm" in sys.modules,
                  "httpx": "httpx" in sys.modules}))
"""


def first_request_figures(base: str, tmp: Path, runs: int) -> None:
    rows: dict[str, list[dict[str, Any]]] = {"openai": [], "litellm": []}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    # As installed: bytecode cached (pip compiles on install; a checkout compiles once).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for kind in rows:  # untimed: writes the bytecode cache
        path = write_config(tmp, f"first-{kind}.yaml", kind, base)
        subprocess.run([sys.executable, "-c", _FIRST, path, base], env=env, capture_output=True)
    for i in range(runs):
        for kind in rows if i % 2 == 0 else reversed(list(rows)):
            path = write_config(tmp, f"first-{kind}.yaml", kind, base)
            out = subprocess.run(
                [sys.executable, "-c", _FIRST, path, base],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            rows[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"\nfirst request in a fresh process (median of {runs} processes per config)")
    print(f"  {'config':14} {'import ms':>10} {'from_config':>12} {'1st route ms':>13}"
          f" {'backend ms':>11} {'beyond ms':>10}  litellm imported")  # fmt: skip
    beyond = {}
    for kind, got in rows.items():
        m = {
            k: statistics.median(r[k] for r in got)
            for k in ("import", "from_config", "first", "backend")
        }
        beyond[kind] = m["first"] - m["backend"]
        print(
            f"  {kind + '-only':14} {m['import'] * 1e3:10.1f} {m['from_config'] * 1e3:12.1f}"
            f" {m['first'] * 1e3:13.1f} {m['backend'] * 1e3:11.2f} {beyond[kind] * 1e3:10.1f}"
            f"  {any(r['litellm'] for r in got)}"
        )
    ok = beyond["openai"] <= 0.1 and not any(r["litellm"] for r in rows["openai"])
    verdict = "ok" if ok else "MISSED"
    print(
        f"  openai-only: first route() {beyond['openai'] * 1e3:.1f} ms beyond the backend's own"
        f" time, litellm not imported   (target <= 100 ms: {verdict})"
    )


def run_openai_figures(
    start_server: Callable[..., Any], n: int, rounds: int, concurrency: int
) -> None:
    proc, url = start_server()
    long_proc, long_url = start_server(reply=LONG_REPLY)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, fake server at {url}")
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            first_request_figures(url + "/v1", tmp, runs=5)
            sync_figures(url + "/v1", tmp, n, rounds)
            stream_figures(long_url + "/v1", tmp, max(20, n // 20))
            async_figures(url + "/v1", tmp, concurrency, batches=3)
    finally:
        for p in (proc, long_proc):
            p.terminate()
            p.wait(timeout=10)

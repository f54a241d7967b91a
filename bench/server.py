"""`router serve` under load against a minimal pass-through, same machine, same backend.

One fake OpenAI-compatible backend in its own process; each server in its own
process with one uvicorn worker (uvloop, httptools):

    a  router serve, `type: openai` models   (the native adapter; skipped until it lands)
    b  router serve, `type: litellm` models
    c  Starlette forwarding to the backend, no routing (bench/passthrough.py): the floor,
       on a bare keep-alive HTTP/1.1 pool (asyncio streams)
    d  router serve, `type: mock` (no upstream): what the server and the router cost alone
    e  (--httpx-floor) the same pass-through on httpx.AsyncClient, what most forwarders use

Load from wrk when installed (`apt-get install -y wrk`), else a bounded asyncio
generator: req/s, p50, p99 at 16 and 64 connections, non-streaming; then streaming
chunks/s. Targets from the issue are printed beside the figures.

    python bench/server.py                    # 12 s per cell, in 3 interleaved rounds
    python bench/server.py --seconds 5 --connections 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LITELLM_PROXY = {"rps": 47.0, "p50_ms": 332.0, "p99_ms": 777.0}  # the figures
REPLY = " ".join(f"word{i}" for i in range(20))  # 20 streamed pieces per answer
BODY = {"model": "auto", "messages": [{"role": "user", "content": "Say hello"}]}

CONFIG = """\
providers:
  fake: {{type: {type}, api_key: sk-bench-0123456789, api_base: "{base}", timeout: 30{extra}}}
models:
  m: {{provider: fake, model: {model}, cost: {{input: 0.15, output: 0.60}}}}
rules:
  - {{name: default, targets: [m]}}
settings: {{usage_db: ":memory:"}}
"""


@dataclass
class Figures:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def _wait_line(proc: subprocess.Popen[str], pattern: str, timeout: float = 60) -> re.Match[str]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        found = re.search(pattern, line)
        if found:
            return found
    raise RuntimeError(f"process did not start (waiting for {pattern!r})")


@contextmanager
def process(cmd: list[str], pattern: str) -> Iterator[str]:
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        found = _wait_line(proc, pattern).group(1)
        # Keep reading its output so a full pipe never stalls the server under test.
        threading.Thread(target=lambda: proc.stdout and proc.stdout.read(), daemon=True).start()
        yield found
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def router_serve(kind: str, backend: str, workdir: Path) -> Iterator[str]:
    model = "gpt-4o-mini" if kind == "openai" else "openai/gpt-4o-mini"
    extra = ", max_connections: 256" if kind == "openai" else ""
    if kind == "mock":  # no upstream at all: what the server and the router cost alone
        extra = f", reply: '{REPLY}'"
    path = workdir / f"{kind}.yaml"
    path.write_text(CONFIG.format(type=kind, base=backend, model=model, extra=extra))
    cmd = [sys.executable, "-m", "router", "serve", str(path), "--port", "0", "--no-watch"]
    with process(cmd, r"on (http://127\.0\.0\.1:\d+)") as url:
        yield url


@contextmanager
def passthrough(backend: str, client: str = "raw") -> Iterator[str]:
    port = _free_port()
    cmd = [
        sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "passthrough:app",
        "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
    ]  # fmt: skip
    os.environ["BACKEND_URL"] = backend
    os.environ["PASSTHROUGH_CLIENT"] = client
    with process(cmd, r"Uvicorn running on (http://127\.0\.0\.1:\d+)") as url:
        yield url


# -- load ----------------------------------------------------------------------------------

_WRK_LUA = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not found:
        raise ValueError(f"cannot read a wrk latency: {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def wrk(url: str, body: dict[str, object], connections: int, seconds: float) -> Figures:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_WRK_LUA.format(body=json.dumps(json.dumps(body))))
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "10s",
             "--latency",
             "-s", f.name, url],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    timeouts = re.search(r"Socket errors:.*?timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (int(timeouts.group(1)) if timeouts else 0)
    return Figures(rps, p50, p99, errors)


async def _client_loop(
    host: str, port: int, request: bytes, stop_at: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if length:
                await reader.readexactly(int(length.group(1)))
            else:  # chunked
                while True:
                    size = int((await reader.readline()).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            latencies.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


def load_generator(url: str, body: dict[str, object], connections: int, seconds: float) -> Figures:
    """Bounded: `connections` keep-alive clients for `seconds`, one request at a time each."""
    m = re.match(r"http://([\d.]+):(\d+)(/.*)", url)
    assert m
    host, port, path = m.group(1), int(m.group(2)), m.group(3)
    raw = json.dumps(body).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(raw)}\r\n\r\n"
    ).encode() + raw
    latencies: list[float] = []
    errors: list[int] = []

    async def run() -> None:
        stop_at = time.perf_counter() + seconds
        await asyncio.gather(
            *(
                _client_loop(host, port, request, stop_at, latencies, errors)
                for _ in range(connections)
            )
        )

    t0 = time.perf_counter()
    asyncio.run(run())
    took = time.perf_counter() - t0
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return Figures(len(latencies) / took, pick(0.50), pick(0.99), len(errors))


def chunks_per_answer(url: str) -> int:
    import httpx

    with httpx.stream("POST", url, json={**BODY, "stream": True}, timeout=30) as got:
        return sum(1 for line in got.iter_lines() if line.startswith("data: {"))


# -- report --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="per cell, all rounds")
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per cell")
    parser.add_argument("--no-wrk", action="store_true", help="use the asyncio generator")
    parser.add_argument(
        "--httpx-floor", action="store_true", help="also (e): the pass-through on httpx"
    )
    args = parser.parse_args()
    use_wrk = shutil.which("wrk") is not None and not args.no_wrk
    measure = wrk if use_wrk else load_generator
    native = (ROOT / "router" / "providers" / "openai_provider.py").exists()
    print(f"load: {'wrk' if use_wrk else 'asyncio load generator'}; {args.seconds:g} s per cell "
          f"in {args.rounds} interleaved rounds (medians); {os.cpu_count()} CPUs; "
          "one worker per server")  # fmt: skip
    if not native:
        print("(a) type: openai: not measured, router/providers/openai_provider.py has not landed")
    results: dict[tuple[str, str, int], Figures] = {}
    chunks: dict[str, int] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        process(
            [sys.executable, "-m", "router.testing", "--port", "0", "--reply", REPLY],
            r"OpenAI base (http://127\.0\.0\.1:\d+/v1)",
        ) as backend,
    ):
        servers = [
            ("c", passthrough, ()),
            ("b", router_serve, ("litellm",)),
            ("d", router_serve, ("mock",)),
        ]
        if args.httpx_floor:
            servers.append(("e", passthrough, ("httpx",)))
        if native:
            servers.insert(0, ("a", router_serve, ("openai",)))
        urls: dict[str, str] = {}
        with ExitStack() as running:  # all up at once; only the one measured is busy
            for name, start, extra in servers:
                if start is passthrough:
                    ctx = passthrough(backend, *extra)
                else:
                    ctx = router_serve(extra[0], backend, Path(tmp))
                url = running.enter_context(ctx).rstrip("/") + "/v1/chat/completions"
                measure(url, BODY, 8, 1.0)  # warm up
                chunks[name] = chunks_per_answer(url)
                urls[name] = url
            # Interleaved rounds, the order rotating, so drift in machine load spreads
            # over every server alike; each figure is the median over the rounds.
            names = list(urls)
            per_round = max(1, round(args.seconds / args.rounds))  # wrk takes whole seconds
            rounds: dict[tuple[str, str, int], list[Figures]] = {}
            for r in range(args.rounds):
                for mode, body in (("plain", BODY), ("stream", {**BODY, "stream": True})):
                    for conns in args.connections:
                        for name in names[r % len(names) :] + names[: r % len(names)]:
                            got = measure(urls[name], body, conns, per_round)
                            rounds.setdefault((name, mode, conns), []).append(got)
            for cell, figures in rounds.items():
                results[cell] = Figures(
                    statistics.median(f.rps for f in figures),
                    statistics.median(f.p50_ms for f in figures),
                    statistics.median(f.p99_ms for f in figures),
                    sum(f.errors for f in figures),
                )
    label = {
        "a": "(a) serve, openai",
        "b": "(b) serve, litellm",
        "c": "(c) pass-through",
        "d": "(d) serve, mock",
        "e": "(e) pass-through/httpx",
    }
    print(f"\n{'server':<25}{'mode':<8}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'chunks/s':>11}{'errors':>8}")  # fmt: skip
    for (name, mode, conns), f in sorted(results.items()):
        cps = f"{f.rps * chunks[name]:.0f}" if mode == "stream" else "-"
        print(f"{label[name]:<25}{mode:<8}{conns:>6}{f.rps:>10.0f}{f.p50_ms:>9.1f}"
              f"{f.p99_ms:>9.1f}{cps:>11}{f.errors:>8}")  # fmt: skip
    print("\ntargets (issue 10), against (c) measured above:")
    best = "a" if native else "b"
    if not native:
        print("  (a) not measured; the same targets applied to (b) for reference:")
    for conns in args.connections:
        x, c = results[(best, "plain", conns)], results[("c", "plain", conns)]
        xs, cs = results[(best, "stream", conns)], results[("c", "stream", conns)]
        x_cps, c_cps = xs.rps * chunks[best], cs.rps * chunks["c"]
        checks = [
            ("req/s", f"{x.rps:.0f}", f">= 0.5 x (c) = {0.5 * c.rps:.0f}", x.rps >= 0.5 * c.rps),
            ("p99", f"{x.p99_ms:.1f} ms", f"<= 2 x (c) = {2 * c.p99_ms:.1f} ms",
             x.p99_ms <= 2 * c.p99_ms),
            ("chunks/s", f"{x_cps:.0f}", f">= 0.5 x (c) = {0.5 * c_cps:.0f}", x_cps >= 0.5 * c_cps),
        ]  # fmt: skip
        if conns == 16:
            want = 20 * LITELLM_PROXY["rps"]
            checks.append(
                ("req/s", f"{x.rps:.0f}", f">= 20 x LiteLLM proxy's 47 = {want:.0f}", x.rps >= want)
            )
        for what, got, target, ok in checks:
            print(
                f"  {conns:>3} conns  {what:<9}{got:>12}  {target:<36}[{'ok' if ok else 'MISSED'}]"
            )
    print(
        "  (LiteLLM proxy, the issue's figure for 1 worker, 16 connections: "
        f"{LITELLM_PROXY['rps']:.0f} req/s, p50 {LITELLM_PROXY['p50_ms']:.0f} ms, "
        f"p99 {LITELLM_PROXY['p99_ms']:.0f} ms)"
    )


if __name__ == "__main__":
    main()

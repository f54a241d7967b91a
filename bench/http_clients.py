"""Which HTTP client for the `openai` adapter: the candidates against one fake server.

The fake provider server runs in its own process. One POST /v1/chat/completions
(the same JSON body) through each client:

    sync   per request, one thread:  router.providers.http11.SyncPool, httpx.Client,
           http.client (stdlib)
    async  -c concurrent requests via asyncio.gather:  http11.AsyncPool,
           httpx.AsyncClient (default pool, then a pool as large as the concurrency),
           aiohttp.ClientSession

and why the slow ones are slow: not Nagle (httpcore and asyncio set TCP_NODELAY) and,
after the warm-up, mostly not connection churn (the "new connections" column counts
connects made while timed); it is CPU per request ("cpu ms"), which for httpx grows
with the pool: httpcore re-plans the whole pool on every request event, with an idle
check that is quadratic in the pool's size (see router/providers/http11.py).

    python bench/http_clients.py -n 2000 -c 200
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from overhead import start_server  # noqa: E402

from router.providers.http11 import Endpoint  # noqa: E402
from router.providers.http11_async import AsyncPool  # noqa: E402
from router.providers.http11_sync import SyncPool  # noqa: E402

KEY = "sk-bench-0123456789abcdef"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}
RAW = json.dumps(BODY).encode()
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}


def sync_paths(base: str) -> dict[str, Callable[[], bytes]]:
    import httpx

    ep = Endpoint.parse(base)
    pool = SyncPool(ep)
    head = (
        f"Host: {ep.host_header}\r\nAuthorization: Bearer {KEY}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
    ).encode()
    client = httpx.Client(base_url=base, headers=HEADERS)
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port)

    def ours() -> bytes:
        return pool.request("POST", ep.prefix + "/chat/completions", head, RAW, 30).body

    def httpx_sync() -> bytes:
        return client.post("/chat/completions", content=RAW).content

    def stdlib() -> bytes:
        conn.request("POST", parts.path + "/chat/completions", RAW, HEADERS)
        return conn.getresponse().read()

    return {"http11.SyncPool": ours, "httpx.Client": httpx_sync, "http.client": stdlib}


def measure_sync(paths: dict[str, Callable[[], bytes]], n: int) -> None:
    print(f"sync: {n} requests each, one thread (interleaved blocks)")
    print(f"  {'client':28} {'mean ms':>9} {'p50 ms':>9} {'cpu ms':>9}")
    for fn in paths.values():
        for _ in range(100):
            fn()
    walls: dict[str, list[float]] = {k: [] for k in paths}
    cpus: dict[str, float] = dict.fromkeys(paths, 0.0)
    for _ in range(10):
        for name, fn in paths.items():
            c0 = time.thread_time()
            for _ in range(n // 10):
                t0 = time.perf_counter()
                assert b"Hello from the fake provider." in fn()
                walls[name].append(time.perf_counter() - t0)
            cpus[name] += time.thread_time() - c0
    for name, w in walls.items():
        w.sort()
        print(
            f"  {name:28} {statistics.fmean(w) * 1e3:9.3f} {w[len(w) // 2] * 1e3:9.3f}"
            f" {cpus[name] / len(w) * 1e3:9.3f}"
        )


async def async_paths(
    base: str, concurrency: int
) -> tuple[dict[str, Callable[[], Awaitable[bytes]]], Callable[[], Awaitable[None]]]:
    import aiohttp
    import httpx

    ep = Endpoint.parse(base)
    pool = AsyncPool(ep, max_connections=concurrency)
    head = (
        f"Host: {ep.host_header}\r\nAuthorization: Bearer {KEY}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
    ).encode()
    # A long timeout: on a loaded machine a burst of 200 connects can exceed httpx's 5 s.
    default = httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=60)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    sized = httpx.AsyncClient(base_url=base, headers=HEADERS, limits=limits, timeout=60)
    session = aiohttp.ClientSession(
        headers=HEADERS, connector=aiohttp.TCPConnector(limit=concurrency)
    )
    url = base + "/chat/completions"

    async def ours() -> bytes:
        return (await pool.request("POST", ep.prefix + "/chat/completions", head, RAW, 30)).body

    async def httpx_default() -> bytes:
        return (await default.post("/chat/completions", content=RAW)).content

    async def httpx_sized() -> bytes:
        return (await sized.post("/chat/completions", content=RAW)).content

    async def aio() -> bytes:
        async with session.post(url, data=RAW) as r:
            return await r.read()

    async def close() -> None:
        await default.aclose()
        await sized.aclose()
        await session.close()

    paths = {
        "http11.AsyncPool": ours,
        "httpx.AsyncClient (default)": httpx_default,
        f"httpx.AsyncClient (pool {concurrency})": httpx_sized,
        "aiohttp.ClientSession": aio,
    }
    return paths, close


async def measure_async(base: str, n: int, concurrency: int) -> None:
    import os

    paths, close = await async_paths(base, concurrency)
    print(f"\nasync: {n} requests each, {concurrency} at a time via asyncio.gather")
    print(f"  {'client':28} {'req/s':>9} {'cpu ms':>9} {'new connections':>16}")
    for name, fn in paths.items():
        await asyncio.gather(*[fn() for _ in range(concurrency)])  # warm: open the pool
        before = _connections(os.getpid())
        c0, t0 = time.process_time(), time.perf_counter()
        done = 0
        while done < n:
            batch = min(concurrency, n - done)
            out = await asyncio.gather(*[fn() for _ in range(batch)])
            assert all(b"Hello from the fake provider." in b for b in out)
            done += batch
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        opened = _connections(os.getpid()) - before
        print(f"  {name:28} {n / wall:9.0f} {cpu / n * 1e3:9.3f} {opened:16d}")
    await close()


_CONNECTS = [0]


def _count_connects() -> None:
    """Count TCP connects this process makes (every client here goes through
    socket.socket.connect, asyncio's included)."""
    import socket

    real = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        _CONNECTS[0] += 1
        real(self, address)  # type: ignore[arg-type]

    socket.socket.connect = connect  # type: ignore[method-assign]


def _connections(pid: int) -> int:
    return _CONNECTS[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", type=int, default=200, help="concurrency of the async run")
    args = parser.parse_args()
    proc, url = start_server()
    _count_connects()
    try:
        base = url + "/v1"
        measure_sync(sync_paths(base), args.n)
        asyncio.run(measure_async(base, args.n, args.c))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()

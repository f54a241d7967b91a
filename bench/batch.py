"""Batch throughput: `Router.batch()` at several concurrencies vs a plain loop of route().

A fake OpenAI-compatible server answers every request after `--delay` seconds (a
model's latency). The baseline, measured in the same run, is what a user writes
without `batch()`: `for line in lines: router.route(line)`. `batch()` also writes
the JSONL output file (atomically, at most once a second) and keeps order.

    .venv/bin/python bench/batch.py [-n 64] [--delay 0.05] [--concurrency 1,4,16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from router import Router  # noqa: E402
from router.testing import FakeProviderServer  # noqa: E402

CONFIG = """\
providers:
  cloud: {{type: litellm, api_key: k, api_base: "{base}"}}
models:
  m: {{provider: cloud, model: openai/m, cost: {{input: 0.1, output: 0.1}}}}
rules:
  - {{name: default, targets: [m]}}
settings: {{usage_db: ":memory:"}}
"""


def row(label: str, seconds: float, n: int, base: float) -> None:
    print(f"{label:<28} {seconds:>8.2f} {n / seconds:>8.1f} {base / seconds:>8.1f}x")


def run(r: Router, tmp: Path, prompts: list[str], levels: list[int]) -> None:
    r.route("warm up")
    print(f"{'how':<28} {'seconds':>8} {'req/s':>8} {'speed-up':>9}")
    t0 = time.perf_counter()
    for p in prompts:
        r.route(p)
    base = time.perf_counter() - t0
    row("loop of route() (baseline)", base, len(prompts), base)
    for c in levels:
        t0 = time.perf_counter()
        records = r.batch(prompts, output=tmp / f"out{c}.jsonl", concurrency=c)
        took = time.perf_counter() - t0
        assert len(records) == len(prompts) and all(rec["ok"] for rec in records)
        row(f"batch(concurrency={c})", took, len(prompts), base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("-n", type=int, default=64, help="requests per run")
    ap.add_argument("--delay", type=float, default=0.05, help="seconds per reply")
    ap.add_argument("--concurrency", default="1,4,16")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    prompts = [f"question {i}" for i in range(args.n)]
    fake = FakeProviderServer(fault_rate=1.0, fault_kinds=("slow",), fault_delay=args.delay)
    with fake, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "rules.yaml"
        config.write_text(CONFIG.format(base=fake.base_url))
        print(f"{args.n} requests, {args.delay * 1000:.0f} ms per reply\n")
        with Router.from_config(config) as r:
            run(r, Path(tmp), prompts, levels)


if __name__ == "__main__":
    main()

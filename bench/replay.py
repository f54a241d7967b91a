"""Replay throughput: logged requests per second through `replay()` (decisions only).

A log is written the real way: the example's old config (examples/replay/old.yaml,
mock models) serves 2,000 requests with `settings.request_log` on; its lines are
repeated up to --requests. Then, in the same run:

  baseline  json.loads of every line: reading the log, no decision
  explain   Router.explain() per request from its text: the serving decision path
  replay    replay(new, log): parse + one decision per request + report
  --against replay(new, log, against=old): two decisions per request

Target: >= 20,000 logged requests per second on one core.

    .venv/bin/python bench/replay.py [--requests 100000]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from router import Router
from router.replay import replay

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "replay"
sys.path.insert(0, str(EXAMPLE))

from replay_change import PROMPTS  # noqa: E402


def write_log(workdir: Path, n: int) -> tuple[Path, list[tuple[str, str | None]]]:
    shutil.copy(EXAMPLE / "old.yaml", workdir / "old.yaml")
    shutil.copy(EXAMPLE / "new.yaml", workdir / "new.yaml")
    rng = random.Random(1)
    served = []
    with Router.from_config(workdir / "old.yaml") as r:
        for _ in range(2000):
            prompt, use_case = rng.choice(PROMPTS)
            r.route(prompt, use_case=use_case, max_tokens=rng.choice([64, 256, 512]))
            served.append((prompt, use_case))
    lines = (workdir / "requests.jsonl").read_text().splitlines(keepends=True)
    big = workdir / "big.jsonl"
    with big.open("w") as fh:
        for i in range(n):
            fh.write(lines[i % len(lines)])
    return big, served


class Timer:
    """Wall time, and this thread's CPU time: on a busy machine the second is the work
    done, without the time spent waiting for a core."""

    def __enter__(self) -> Timer:
        self.w0, self.c0 = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.thread_time() - self.c0


def rate(n: int, t: Timer) -> str:
    return (
        f"{n / t.wall:>10,.0f} req/s wall {n / t.cpu:>10,.0f} req/s cpu"
        f"   {t.cpu * 1e6 / n:>7.2f} cpu us/req"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=100_000)
    n = ap.parse_args().requests
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log, served = write_log(work, n)
        print(f"replay throughput over {n:,} logged requests (one process, one core)\n")

        with Timer() as t, log.open() as fh:
            for line in fh:
                json.loads(line)
        print(f"{'baseline: json.loads only':<34}{rate(n, t)}")

        with Router.from_config(work / "old.yaml") as r:
            k = min(n, 20_000)
            with Timer() as t:
                for i in range(k):
                    prompt, use_case = served[i % len(served)]
                    r.explain(prompt, use_case=use_case)
            print(f"{'explain() per request':<34}{rate(k, t)}")

        with Timer() as t:
            report = replay(work / "new.yaml", log)
        assert report.requests == n, report.requests
        print(f"{'replay(new, log)':<34}{rate(n, t)}   moved {report.moved_fraction:.1%}")

        with Timer() as t:
            report = replay(work / "new.yaml", log, against=work / "old.yaml")
        label = "replay(new, log, against=old)"
        print(f"{label:<34}{rate(n, t)}   moved {report.moved_fraction:.1%}")
        print("\ntarget: >= 20,000 req/s")


if __name__ == "__main__":
    main()

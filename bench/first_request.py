"""The first request of a fresh process: with and without the Router's warm-up.

Each run is a new Python process (litellm not yet imported) that builds a Router on a
one-model config pointing at a fake OpenAI-compatible server, waits `--think`
seconds (a program doing its own start-up), then routes one request. Printed per
mode, median of `-n` runs:

    wall     seconds from route() called to result returned: what the caller waits
    latency  Result.latency_s: what the router records (and `fastest` averages)

The baseline is warm=False, measured in the same run.

    python bench/first_request.py -n 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
from router import Router
r = Router.from_config(sys.argv[1], warm=sys.argv[2] == "1")
time.sleep(float(sys.argv[3]))
t0 = time.perf_counter()
res = r.route("hello")
print(json.dumps({"wall": time.perf_counter() - t0, "latency": res.latency_s}))
r.close()
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3)
    ap.add_argument("--think", type=float, default=8.0, help="seconds before the request")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from router.testing import FakeProviderServer

    with FakeProviderServer(reply="hi") as fake, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "router.yaml"
        config.write_text(
            f"providers: {{p: {{type: litellm, api_base: '{fake.base_url}', api_key: k}}}}\n"
            "models: {m: {provider: p, model: openai/gpt-4o-mini}}\n"
            "rules: [{name: d, targets: [m]}]\nsettings: {usage_db: ':memory:'}\n"
        )
        print(f"{'mode':<12} {'wall s':>8} {'latency_s':>10}   (median of {args.n})")
        for warm in ("0", "1"):
            walls, latencies = [], []
            for _ in range(args.n):
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, str(config), warm, str(args.think)],
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                    check=True,
                )
                got = json.loads(out.stdout.strip().splitlines()[-1])
                walls.append(got["wall"])
                latencies.append(got["latency"])
            name = "warm=True" if warm == "1" else "warm=False"
            print(
                f"{name:<12} {statistics.median(walls):>8.3f} {statistics.median(latencies):>10.3f}"
            )


if __name__ == "__main__":
    main()

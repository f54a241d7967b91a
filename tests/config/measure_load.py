"""Load-time figures for a 1,000-rule config over 100 models (not a test).

.venv/bin/python -m tests.config.measure_load
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.config.bigconfig import big_config_yaml


def main() -> None:
    t0 = time.perf_counter()
    from router.config import load_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.yaml"
        path.write_text(big_config_yaml(), encoding="utf-8")
        t1 = time.perf_counter()
        config = load_config(path, environ={})
        first = time.perf_counter() - t1
        runs, cpu = [], []
        for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 10):
            t, c = time.perf_counter(), time.process_time()
            load_config(path, environ={})
            runs.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    assert len(config.rules) == 1000 and len(config.models) == 100
    print(f"import router.config: {(t1 - t0) * 1000:.1f} ms (file write included)")
    print(f"first load (cold caches): {first * 1000:.1f} ms")
    print(
        f"warm loads: median {statistics.median(runs) * 1000:.1f} ms, "
        f"min {min(runs) * 1000:.1f} ms, max {max(runs) * 1000:.1f} ms over {len(runs)}"
    )
    # CPU time is what the load costs; wall time also counts other processes on a busy box.
    print(f"warm loads, CPU time: median {statistics.median(cpu) * 1000:.1f} ms")


if __name__ == "__main__":
    main()

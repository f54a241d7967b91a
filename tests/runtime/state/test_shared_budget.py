"""Processes sharing one SQLite spend file share its budgets: real OS processes spend
against one global budget at once, and together overshoot it by at most one request
per process (the reservation is a `BEGIN IMMEDIATE` transaction over the file)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PROCESSES = 3
LIMIT = 0.05

CONFIG = f"""\
providers: {{echo: {{type: mock, reply: "a reply of a few words"}}}}
models:
  paid: {{provider: echo, cost: {{input: 100, output: 100}}}}
rules:
  - {{name: all, targets: [paid], on_budget: error}}
budgets:
  global: {{daily: {LIMIT}}}
settings: {{usage_db: spend.sqlite, default_max_tokens: 8}}
"""

# Spend until the budget says no (bounded: at most 400 requests, 60 s).
CHILD = """
import sys, time
from router import Router
from router.errors import BudgetExceeded, NoRouteError
router = Router.from_config(sys.argv[1])
served, costs, deadline = 0, [], time.monotonic() + 60
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.readline()  # all processes start spending together
while served < 400 and time.monotonic() < deadline:
    try:
        costs.append(router.route("spend a little please").cost_usd)
        served += 1
    except (BudgetExceeded, NoRouteError):
        break
router.close()
print(served, max(costs, default=0.0))
"""


@pytest.mark.slow
def test_processes_sharing_a_spend_file_share_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err[-2000:]
            served, biggest = out.split()
            results.append((int(served), float(biggest)))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    with sqlite3.connect(tmp_path / "spend.sqlite") as db:
        (total,) = db.execute("SELECT sum(cost_usd) FROM usage").fetchone()
        (count,) = db.execute("SELECT count(*) FROM usage").fetchone()
    per_request = max(b for _, b in results)
    assert count == sum(s for s, _ in results)
    # (a process that starts late may find the budget already spent: that is sharing too)
    assert total >= LIMIT - per_request  # the budget was used...
    assert total <= LIMIT + PROCESSES * per_request, (total, results)  # ...and shared

"""Test a config change on yesterday's traffic before it goes live.

    .venv/bin/python examples/replay/replay_change.py

1. Serve some traffic with old.yaml, whose `settings.request_log` writes one JSON
   line per request to examples/replay/requests.jsonl (no prompt text: features only).
2. Replay that log through new.yaml: no model is called. The report shows requests
   per rule and model before and after, what moved, the cost before and after from
   the logged token counts, what would no longer route, and new.yaml's own tests.

The same from the shell (and in CI, failing a change that moves over 20% of traffic
or raises cost by over 10%):

    router replay examples/replay/new.yaml --log examples/replay/requests.jsonl \\
        --against examples/replay/old.yaml --max-moved 20 --max-cost-increase 10
    router diff examples/replay/old.yaml examples/replay/new.yaml
"""

from __future__ import annotations

import random
from pathlib import Path

from router import Router

HERE = Path(__file__).resolve().parent

PROMPTS = [
    ("Fix this stack trace: IndexError in parse()", None),
    ("Write a function that merges two sorted lists", "coding"),
    ("Why does this class not compile?", "debugging"),
    ("hello! how are you today?", "chat"),
    ("thanks, that helped", "chat"),
    ("What is the capital of Peru?", None),
    ("Summarise this report: " + "quarterly figures and notes " * 1200, None),
]


def serve_yesterday(where: Path = HERE, n: int = 500) -> Path:
    log = where / "requests.jsonl"
    log.unlink(missing_ok=True)
    rng = random.Random(7)
    with Router.from_config(where / "old.yaml") as r:
        for _ in range(n):
            prompt, use_case = rng.choice(PROMPTS)
            r.route(prompt, use_case=use_case, max_tokens=rng.choice([64, 256, 512]))
    return log


def main(where: Path = HERE) -> list[str]:
    log = serve_yesterday(where)
    with Router.from_config(where / "new.yaml") as r:
        report = r.replay(log, against=where / "old.yaml")
    print(report.describe())
    problems = report.violations(max_moved_pct=20, max_cost_increase_pct=10)
    print("\nCI verdict:", "; ".join(problems) if problems else "ok to ship")
    return problems


if __name__ == "__main__":
    main()

"""`router batch [CONFIG] input.jsonl -o output.jsonl [--concurrency N]`."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_batch(ns: argparse.Namespace) -> int:
    from router.commands.health import open_router

    if len(ns.args) > 2:
        print("router: error: batch takes [CONFIG] INPUT.jsonl", file=sys.stderr)
        return 2
    config, source = (None, ns.args[0]) if len(ns.args) == 1 else ns.args
    with open_router(config) as r:
        try:
            records = r.batch(
                source,
                output=ns.output,
                concurrency=ns.concurrency,
                progress=sys.stderr if sys.stderr.isatty() else None,
            )
        except KeyboardInterrupt:
            print(
                f"interrupted: {ns.output} holds every line answered so far; "
                "run the same command again to resume",
                file=sys.stderr,
            )
            return 130
    failed = sum(not rec["ok"] for rec in records)
    cost = sum(rec.get("cost_usd") or 0.0 for rec in records if rec["ok"])
    print(
        f"{len(records)} lines, {len(records) - failed} ok, {failed} failed, "
        f"${cost:.6f}; output in {ns.output}",
        file=sys.stderr,
    )
    return 1 if failed else 0


def register(sub: Any) -> None:
    sp = sub.add_parser("batch", help="route every line of a JSONL file, resumably")
    sp.add_argument("args", nargs="+", metavar="[CONFIG] INPUT")
    sp.add_argument("-o", "--output", required=True, help="JSONL output (resumed if it exists)")
    sp.add_argument("--concurrency", "-c", type=int, default=4)
    sp.set_defaults(func=cmd_batch)


__all__ = ["register"]

"""`router compare [CONFIG] "prompt" --models a,b,c [--json]`: one prompt, several models."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from collections.abc import Sequence
from typing import Any


def format_table(rows: Sequence[Any], width: int = 60) -> str:
    """model | ttft | total | tokens | cost | answer (wrapped to `width`)."""
    head = f"{'model':<20} {'ttft':>8} {'total':>8} {'tokens':>10} {'cost USD':>10}  answer"
    lines = [head, "-" * (len(head) + width - 6)]
    for r in rows:
        ttft = f"{r.ttft_s * 1000:.0f} ms" if r.ttft_s is not None else "-"
        total = f"{r.total_s * 1000:.0f} ms" if r.total_s is not None else "-"
        tokens = f"{r.usage.input_tokens}+{r.usage.output_tokens}" if r.ok else "-"
        cost = "-" if not r.ok else "unknown" if r.cost_usd is None else f"{r.cost_usd:.6f}"
        answer = f"FAILED {r.error}" if r.error else r.text.strip() or "(empty)"
        wrapped = textwrap.wrap(" ".join(answer.split()), width) or [""]
        lines.append(f"{r.model:<20} {ttft:>8} {total:>8} {tokens:>10} {cost:>10}  {wrapped[0]}")
        pad = " " * (20 + 8 + 8 + 10 + 10 + 6)
        lines.extend(pad + w for w in wrapped[1:])
    return "\n".join(lines)


def cmd_compare(ns: argparse.Namespace) -> int:
    from router.commands.health import open_router

    models = [m.strip() for m in ns.models.split(",") if m.strip()]
    kwargs: dict[str, Any] = {}
    if ns.max_tokens is not None:
        kwargs["max_tokens"] = ns.max_tokens
    if ns.temperature is not None:
        kwargs["temperature"] = ns.temperature
    with open_router(ns.config, check_tests=False) as r:
        rows = r.compare(ns.prompt, models=models, **kwargs)
    if ns.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        width = max(30, shutil.get_terminal_size((120, 24)).columns - 64)
        print(format_table(rows, width))
    return 0 if any(row.ok for row in rows) else 1


def register(sub: Any) -> None:
    sp = sub.add_parser("compare", help="send one prompt to several models in parallel")
    # CONFIG is optional: `router compare "prompt" --models a,b` uses the default config.
    sp.add_argument("args", nargs="+", metavar="[CONFIG] PROMPT")
    sp.add_argument("--models", "-m", required=True, help="comma-separated model names")
    sp.add_argument("--max-tokens", type=int)
    sp.add_argument("--temperature", type=float)
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=_split_args)


def _split_args(ns: argparse.Namespace) -> int:
    if len(ns.args) > 2:
        print("router: error: compare takes [CONFIG] PROMPT: quote the prompt", file=sys.stderr)
        return 2
    ns.config, ns.prompt = (None, ns.args[0]) if len(ns.args) == 1 else ns.args
    return cmd_compare(ns)


__all__ = ["register"]

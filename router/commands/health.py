"""`router health [CONFIG] [--json] [--timeout S]`: probe every provider for real."""

from __future__ import annotations

import argparse
import json
from typing import Any

from router.commands import add_config


def open_router(config: str | None, **kwargs: Any) -> Any:
    import router

    return router.Router.from_config(config or router.default_config_path(), **kwargs)


def format_table(rows: list[Any]) -> str:
    """One line per provider (`ProviderHealth`), then its notes."""
    lines = [f"{'provider':<16} {'type':<10} {'status':<9} {'latency':>9}  detail"]
    for h in rows:
        ms = f"{h.latency_ms:.0f} ms" if h.latency_ms is not None else "-"
        detail = h.error or h.disabled_reason or h.probe
        lines.append(f"{h.name:<16} {h.type:<10} {h.status:<9} {ms:>9}  {detail}")
        lines.extend(f"{'':<16} note: {n}" for n in h.notes)
    return "\n".join(lines)


def cmd_health(ns: argparse.Namespace) -> int:
    with open_router(ns.config, check_tests=False) as r:
        rows = r.health(timeout=ns.timeout)
    if ns.json:
        print(json.dumps([h.as_dict() for h in rows], indent=2))
    else:
        print(format_table(rows))
    return 1 if any(h.status == "down" for h in rows) else 0


def register(sub: Any) -> None:
    sp = sub.add_parser("health", help="probe every provider: up, down or disabled, and why")
    add_config(sp)
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--timeout", type=float, default=10.0, help="seconds per probe")
    sp.set_defaults(func=cmd_health)

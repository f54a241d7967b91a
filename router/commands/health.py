"""`router health [CONFIG] [--json] [--timeout S]`: probe every provider for real."""

from __future__ import annotations

import argparse
import json
from typing import Any

from router.commands import add_config


def open_router(config: str | None, **kwargs: Any) -> Any:
    from router.runtime.default import default_config_path
    from router.runtime.router import Router

    return Router.from_config(config or default_config_path(), **kwargs)


def cmd_health(ns: argparse.Namespace) -> int:
    from router.runtime.health import DOWN, format_table

    with open_router(ns.config, check_tests=False) as r:
        rows = r.health(timeout=ns.timeout)
    if ns.json:
        print(json.dumps([h.as_dict() for h in rows], indent=2))
    else:
        print(format_table(rows))
    return 1 if any(h.status == DOWN for h in rows) else 0


def register(sub: Any) -> None:
    sp = sub.add_parser("health", help="probe every provider: up, down or disabled, and why")
    add_config(sp)
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--timeout", type=float, default=10.0, help="seconds per probe")
    sp.set_defaults(func=cmd_health)

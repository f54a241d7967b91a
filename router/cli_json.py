"""The JSON documents `--json` prints: one per command, on stdout, with stable keys.

    explain   {"served", "rule", "model", "provider", "candidates", "rejected",
               "use_case", "tokens", "max_tokens", "config_version", "rules": [...]}
    run       {"text", "model", "provider", "rule", "usage", "cost_usd", "price_known",
               "latency_s", "finish_reason", "attempts": [...], "decision": <explain>}
    test      {"ok", "passed", "failed", "skipped", "tests": [...]}
    validate  {"ok", "files", "providers", "models", "rules", "tests", "disabled",
               "warnings", "errors": [{"file", "line", "pointer", "message"}]}

Keys are only ever added, never renamed or removed; the README lists them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from router.errors import ConfigError
from router.types import Decision, Result


def dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2, default=str)


def decision_doc(d: Decision) -> dict[str, Any]:
    return {
        "served": d.served,
        "rule": d.rule,
        "model": d.model,
        "provider": d.provider,
        "candidates": list(d.candidates),
        "rejected": {m: str(why) for m, why in d.rejected.items()},
        "use_case": d.use_case,
        "tokens": d.tokens,
        "max_tokens": d.max_tokens,
        "config_version": d.config_version,
        "rules": [
            {
                "rule": t.rule,
                "matched": t.matched,
                "candidates": list(t.candidates),
                "rejected": {m: str(why) for m, why in t.rejected.items()},
                "strategy": t.strategy,
                "note": t.note,
            }
            for t in d.rules
        ],
    }


def result_doc(r: Result) -> dict[str, Any]:
    return {
        "text": r.text,
        "model": r.model,
        "provider": r.provider,
        "rule": r.rule,
        "usage": {
            "input_tokens": r.usage.input_tokens,
            "output_tokens": r.usage.output_tokens,
            "estimated": getattr(r.usage, "estimated", False),
        },
        "cost_usd": r.cost_usd,
        "price_known": r.cost_usd is not None,
        "latency_s": r.latency_s,
        "finish_reason": r.finish_reason,
        "attempts": [
            {
                "model": a.model,
                "provider": a.provider,
                "error": a.error,
                "message": a.message,
                "duration_s": a.duration_s,
            }
            for a in r.attempts
        ],
        "decision": decision_doc(r.decision),
    }


def errors_doc(exc: ConfigError) -> list[dict[str, Any]]:
    return [
        {"file": i.file, "line": i.line, "pointer": i.pointer, "message": i.message}
        for i in exc.issues
    ]


def test_entry(
    file: str | None, line: int | None, prompt: str, status: str, message: str
) -> dict[str, Any]:
    return {"file": file, "line": line, "prompt": prompt, "status": status, "message": message}


def failure_doc(message: str, attempts: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    return {"ok": False, "error": message, "attempts": list(attempts)}


__all__ = ["decision_doc", "dumps", "errors_doc", "failure_doc", "result_doc", "test_entry"]

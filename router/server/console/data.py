"""What each console page shows, as plain JSON-ready data: the pages and the
`/v1/router/...` API read the same functions, so a script sees what a person sees.

Nothing here returns a key (keys are named, never shown) or a provider's settings;
prompt and answer text only when the serving config's request log keeps text.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from router import (
    OUTCOMES,
    Decision,
    RecentRequests,
    RequestSummary,
    Router,
    plain,
)
from router.server.keys import period_start


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def keeps_text(router: Router) -> bool:
    """Whether the serving config's request log keeps prompt and answer text."""
    settings = router.config.settings.request_log
    return settings is not None and settings.log_text


def request_row(rec: RequestSummary, with_text: bool) -> dict[str, Any]:
    out = rec.to_dict()
    out["time"] = iso(rec.at)
    out["fallback"] = rec.fallback
    if not with_text:  # kept while the config said so; shown only while it still does
        out.pop("prompt", None)
        out.pop("answer", None)
    return out


def overview(router: Router, recent: RecentRequests, now: float | None = None) -> dict[str, Any]:
    """Traffic figures and charts, and spend today and this month by model."""
    now = time.time() if now is None else now
    traffic = recent.overview()
    spend: dict[str, list[dict[str, Any]]] = {}
    for period in ("day", "month"):
        rows = router.usage(("model",), period_start(period, now))
        spend[period] = sorted(
            (
                {
                    "model": str(r["model"]),
                    "cost_usd": round(r.cost_usd, 8),
                    "requests": r.requests,
                    "unpriced_requests": r.unpriced_requests,
                }
                for r in rows
            ),
            key=lambda row: (-row["cost_usd"], -row["requests"], row["model"]),
        )
    status = router.status()
    totals = status.state.spend
    return {
        "now": now,
        "traffic": traffic.to_dict(),
        "spend": {
            "today": spend["day"],
            "month": spend["month"],
            "today_usd": totals.today_usd if totals else None,
            "month_usd": totals.month_usd if totals else None,
        },
        "config_version": status.config_version,
        "last_error": status.last_error,
    }


def requests(
    router: Router,
    recent: RecentRequests,
    *,
    rule: str | None = None,
    model: str | None = None,
    outcome: str | None = None,
    limit: int = 200,
) -> dict[str, Any]:
    """The last requests, newest first, and the values the filters offer."""
    with_text = keeps_text(router)
    rows = recent.records(rule=rule, model=model, outcome=outcome, limit=limit)
    cfg = router.config
    return {
        "requests": [request_row(r, with_text) for r in rows],
        "text_kept": with_text,
        "filters": {"rule": rule, "model": model, "outcome": outcome},
        "choices": {
            "rule": [r.name for r in cfg.rules],
            "model": list(cfg.models),
            "outcome": list(OUTCOMES),
        },
    }


def _headroom(rate_limit: Mapping[str, Mapping[str, float]] | None) -> list[dict[str, Any]]:
    if not rate_limit:
        return []
    return [
        {
            "unit": unit,
            "limit": v["limit"],
            "available": v["available"],
            "fraction": max(0.0, min(1.0, v["available"] / v["limit"])) if v["limit"] else 0.0,
        }
        for unit, v in rate_limit.items()
    ]


def models(router: Router) -> dict[str, Any]:
    """Providers (health, enabled), models (circuit, rate-limit headroom, in flight),
    budgets per scope, and local models loaded in the pool."""
    status = router.status()
    live = status.state
    details = router.provider_details()
    providers = []
    for name, info in status.providers.items():
        state = live.providers.get(name)
        providers.append(
            {
                "name": name,
                "type": info.type,
                "enabled": state.enabled if state is not None else info.enabled,
                "disabled_reason": (state.disabled_reason if state is not None else None)
                or info.disabled_reason,
                "health": plain(status.health.get(name)),
                "loaded": [
                    {
                        "path": str(m.get("path", "")),
                        "loaded": bool(m.get("loaded")),
                        "users": int(m.get("users", 0)),
                        "idle_s": m.get("idle_s"),
                    }
                    for m in details.get(name, {}).get("loaded", ()) or ()
                ],
            }
        )
    model_rows = []
    for name, m in live.models.items():
        breaker = m.breaker
        model_rows.append(
            {
                "name": name,
                "provider": m.provider,
                "circuit": breaker["state"],
                "failures": breaker["failures"],
                "reopens_at": iso(breaker["open_until"]),
                "circuit_reason": breaker["reason"],
                "held": m.held,
                "in_flight": m.in_flight,
                "latency_ms": m.latency_ms,
                "rate_limit": _headroom(m.rate_limit),
                "rate_limit_waits": m.rate_limit_waits[0],
            }
        )
    budgets = [
        {
            **b.to_dict(),
            "fraction": min(1.0, b.spent_usd / b.limit_usd) if b.limit_usd else 1.0,
        }
        for b in live.budgets
    ]
    return {
        "providers": providers,
        "models": model_rows,
        "budgets": budgets,
        "shared_state": plain(live.shared_state),
    }


def config(router: Router, last_reload: Mapping[str, Any] | None) -> dict[str, Any]:
    """The config serving, the last reload and its change in words, the routing tests."""
    status = router.status()
    tests = []
    for n, outcome in enumerate(router.run_tests(), 1):
        test = outcome.test
        tests.append(
            {
                "n": n,
                "prompt": test.prompt,  # the config's own text, not a user's
                "use_case": test.use_case,
                "expect": dict(test.expect),
                "where": f"{test.where.file}:{test.where.line}" if test.where.file else None,
                "ok": outcome.ok,
                "skipped": outcome.skipped,
                "message": outcome.message,
            }
        )
    return {
        "version": status.config_version,
        "sha256": status.sha256,
        "files": list(status.files),
        "loaded_at": iso(status.loaded_at),
        "watching": status.watching,
        "last_error": status.last_error,
        "last_error_at": iso(status.last_error_at),
        "last_reload": dict(last_reload) if last_reload else None,
        "tests": tests,
        "tests_passed": sum(t["ok"] for t in tests),
        "tests_failed": sum(not t["ok"] and not t["skipped"] for t in tests),
    }


def trace_rows(decision: Decision) -> list[dict[str, Any]]:
    """`explain()`'s trace as table rows: one per rule not matched, one per candidate kept
    (with its place in the order) or dropped (with why)."""
    rows: list[dict[str, Any]] = []
    for t in decision.rules:
        if not t.matched:
            rows.append(
                {"rule": t.rule, "result": "no match", "model": "", "verdict": "", "detail": t.note}
            )
            continue
        result = "serves" if t.rule == decision.rule else "skipped"
        for i, m in enumerate(t.candidates, 1):
            chosen = t.rule == decision.rule and m == decision.model
            rows.append(
                {
                    "rule": t.rule,
                    "result": result,
                    "model": m,
                    "verdict": "chosen" if chosen else f"kept #{i}",
                    "detail": f"strategy {t.strategy}{decision.price_note(m)}",
                }
            )
        for m, why in t.rejected.items():
            rows.append(
                {
                    "rule": t.rule,
                    "result": result,
                    "model": m,
                    "verdict": f"dropped ({why.kind.value})",
                    "detail": why.text,
                }
            )
        if not t.candidates and not t.rejected:
            rows.append(
                {"rule": t.rule, "result": result, "model": "", "verdict": "", "detail": t.note}
            )
    return rows


def explained(decision: Decision) -> dict[str, Any]:
    return {
        "rule": decision.rule,
        "model": decision.model,
        "provider": decision.provider,
        "order": list(decision.candidates),
        "use_case": decision.use_case,
        "tokens": decision.tokens,
        "rows": trace_rows(decision),
        "describe": decision.describe(),
    }

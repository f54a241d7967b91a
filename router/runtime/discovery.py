"""`Router.models()`: the config's models, and with `discover=True` what each provider offers.

A listing that fails is a row saying so (`listing failed: GET ...: 401: ...`),
never an empty list that looks like a provider with no models. Context and price
come from the YAML, else from the provider's listing (OpenRouter gives both),
else from litellm's price map, else they are unknown (None).
"""

from __future__ import annotations

import threading

from router.errors import RouterError
from router.providers.base import Listed
from router.providers.listing import api_kind, listed_id
from router.runtime.snapshot import Snapshot
from router.types import ModelInfo


def model_rows(snap: Snapshot, discover: bool = False) -> list[ModelInfo]:
    rows: list[ModelInfo] = []
    for m in snap.config.models.values():
        p = snap.config.providers[m.provider]
        cost = None if m.cost is None else (m.cost.input, m.cost.output)
        note = p.disabled_reason or ""
        rows.append(ModelInfo(m.name, m.provider, m.model, m.context, p.enabled, note, cost))
    if discover:
        rows.extend(_discovered(snap))
    return rows


def _discovered(snap: Snapshot) -> list[ModelInfo]:
    """Every enabled provider's listing, asked in parallel."""
    names = [n for n, p in snap.config.providers.items() if p.enabled]
    found: dict[str, list[ModelInfo]] = {}
    threads = [
        threading.Thread(target=lambda n=n: found.__setitem__(n, _listing(snap, n)), daemon=True)
        for n in names
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    out: list[ModelInfo] = []
    for n in names:
        out.extend(found.get(n) or [_row(n, "-", None, None, "listing failed: no answer in 30s")])
    return out


def _listing(snap: Snapshot, name: str) -> list[ModelInfo]:
    ids = [m.model for m in snap.config.models.values() if m.provider == name]
    p = snap.config.providers[name]
    kind = api_kind(p.api_base, p.settings.get("api"), ids) if p.type == "litellm" else None
    declared = set(ids) | {listed_id(kind or "ollama", i) for i in ids}
    declared |= {listed_id(kind or "openai", i) for i in ids}
    try:
        listed = snap.provider(name).discover(ids)
    except RouterError as exc:
        return [_row(name, "-", None, None, f"listing failed: {exc}")]
    if not listed:
        return [_row(name, "-", None, None, "the provider lists no models")]
    return [
        _row(name, m.id, m.context, _cost(m), "declared" if m.id in declared else "discovered")
        for m in listed
    ]


def _cost(m: Listed) -> tuple[float, float] | None:
    if m.cost_input is None or m.cost_output is None:
        return None
    return (round(m.cost_input, 6), round(m.cost_output, 6))


def _row(
    provider: str, mid: str, context: int | None, cost: tuple[float, float] | None, note: str
) -> ModelInfo:
    return ModelInfo("-", provider, mid, context, True, note, cost)


__all__ = ["model_rows"]

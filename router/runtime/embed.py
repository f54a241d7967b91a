"""`Router.embed()`: embeddings routed by the same rules as completions.

A model serves embeddings when its YAML lists `capabilities: [embeddings]`. The
request carries the need "embeddings", so the rules' candidate filter drops every
other model with the reason "missing capability: embeddings" and the first rule
with an embedding model left serves, in the strategy's order. `model=` names the
model and skips the rules. Breakers, budgets and rate limits admit each try as
they do a completion; usage and cost go to the usage store under the rule's name.
A failing candidate moves the request on to the next one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from router.config.model import ModelConfig
from router.engine.decide import decide
from router.errors import BadRequest, NoRouteError, ProviderError
from router.providers.base import EmbedCall
from router.runtime.calls import cost_of
from router.runtime.requests import build_request
from router.runtime.snapshot import Snapshot
from router.runtime.state.live import LiveState
from router.runtime.state.usage import UsageRecord
from router.types import Attempt, Decision, EmbeddingResult

EMBEDDINGS = "embeddings"  # the capability, and the need an embedding request carries


def texts_of(texts: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(texts, str):
        return (texts,)
    out = tuple(texts)
    if not out:
        raise BadRequest("embed() needs at least one text")
    bad = [i for i, t in enumerate(out) if not isinstance(t, str)]
    if bad:
        raise BadRequest(f"embed(): texts[{bad[0]}] is not a string")
    return out


def plan(
    snap: Snapshot,
    state: LiveState,
    texts: tuple[str, ...],
    use_case: str | None,
    model: str | None,
    hints: Mapping[str, Any],
) -> tuple[Decision | None, list[tuple[str | None, ModelConfig]]]:
    """The decision and the (rule, model) pairs to try in order."""
    if model is not None:
        found = snap.config.models.get(model)
        if found is None:
            raise BadRequest(f"unknown model {model!r}")
        return None, [(None, found)]
    request = build_request("\n".join(texts), use_case=use_case, **hints)
    # Output is a vector, not tokens: ask the context filter for one token of room.
    request = replace(request, needs=request.needs | {EMBEDDINGS}, max_tokens=1)
    decision, cands = decide(snap.ruleset, request, state, version=snap.version)
    if not cands:
        reasons = "; ".join(f"{m}: {why}" for m, why in decision.rejected.items())
        raise NoRouteError(
            f"no rule can serve embeddings ({reasons or 'no rule matches'})", decision
        )
    return decision, [(decision.rule, c.model) for c in cands]


def embed(
    snap: Snapshot,
    state: LiveState,
    texts: str | Sequence[str],
    *,
    use_case: str | None = None,
    model: str | None = None,
    params: Mapping[str, Any] | None = None,
    hints: Mapping[str, Any] | None = None,
) -> EmbeddingResult:
    items = texts_of(texts)
    decision, todo = plan(snap, state, items, use_case, model, hints or {})
    started = time.perf_counter()
    tokens = sum(len(t) for t in items) // 4 + 1
    attempts: list[Attempt] = []
    for rule, m in todo:
        ticket = state.admit(m.name, rule, tokens, 0.0)
        if isinstance(ticket, str):
            attempts.append(Attempt(m.name, m.provider, "skipped", ticket, 0.0))
            continue
        t0 = time.perf_counter()
        timeout = snap.config.providers[m.provider].timeout
        try:
            out = snap.provider(m.provider).embed(EmbedCall(m, items, dict(params or {}), timeout))
        except ProviderError as exc:
            state.failed(ticket, exc)
            attempts.append(
                Attempt(m.name, m.provider, exc.kind, str(exc), time.perf_counter() - t0)
            )
            continue
        except BaseException:
            state.failed(ticket)
            raise
        if len(out.vectors) != len(items):
            why = f"{len(out.vectors)} vectors for {len(items)} texts"
            state.failed(ticket)
            attempts.append(Attempt(m.name, m.provider, "bad_response", why, 0.0))
            continue
        cost = cost_of(m, out.usage, out.cost_usd)
        record = UsageRecord(
            time.time(),
            m.name,
            m.provider,
            rule,
            out.usage.input_tokens,
            0,
            cost,
            snap.config.sha256,
        )
        state.succeeded(ticket, record, latency_s=time.perf_counter() - t0)
        return EmbeddingResult(
            out.vectors,
            m.name,
            m.provider,
            out.usage,
            cost,
            time.perf_counter() - started,
            decision,
            tuple(attempts),
            rule,
        )
    tried = ", ".join(f"{a.model} ({a.error})" for a in attempts) or "nothing was tried"
    raise NoRouteError(f"every embedding candidate failed: {tried}", decision, attempts)


__all__ = ["EMBEDDINGS", "embed", "texts_of"]

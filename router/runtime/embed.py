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
from router.engine.requests import build_request
from router.errors import NoRouteError, ProviderError, RequestError
from router.providers.base import Embeddings
from router.runtime.calls import cost_of
from router.runtime.snapshot import Snapshot
from router.runtime.state.live import LiveState, Ticket
from router.runtime.state.usage import UsageRecord
from router.types import Attempt, Decision, EmbeddingResult

EMBEDDINGS = "embeddings"  # the capability, and the need an embedding request carries


def texts_of(texts: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(texts, str):
        return (texts,)
    out = tuple(texts)
    if not out:
        raise RequestError("embed() needs at least one text")
    bad = [i for i, t in enumerate(out) if not isinstance(t, str)]
    if bad:
        raise RequestError(f"embed(): texts[{bad[0]}] is not a string")
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
            raise RequestError(f"unknown model {model!r}")
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


class _Embedding:
    """One embed() request's way through its candidates; `embed` and `aembed` share it."""

    def __init__(
        self,
        snap: Snapshot,
        state: LiveState,
        texts: str | Sequence[str],
        use_case: str | None,
        model: str | None,
        params: Mapping[str, Any] | None,
        hints: Mapping[str, Any] | None,
    ) -> None:
        self.snap, self.state = snap, state
        self.items = texts_of(texts)
        self.decision, self.todo = plan(snap, state, self.items, use_case, model, hints or {})
        self.params = dict(params or {})
        self.started = time.perf_counter()
        self.tokens = sum(len(t) for t in self.items) // 4 + 1
        self.attempts: list[Attempt] = []

    def params_for(self, m: ModelConfig) -> dict[str, Any]:
        timeout = self.snap.config.providers[m.provider].timeout
        return self.params if timeout is None else {"timeout": timeout, **self.params}

    def refused(self, m: ModelConfig, why: str) -> None:
        self.attempts.append(Attempt(m.name, m.provider, "skipped", why, 0.0))

    def failed(self, ticket: Ticket, m: ModelConfig, exc: ProviderError, t0: float) -> None:
        self.state.failed(ticket, exc)
        took = time.perf_counter() - t0
        self.attempts.append(Attempt(m.name, m.provider, exc.kind, str(exc), took))

    def served(
        self, ticket: Ticket, rule: str | None, m: ModelConfig, out: Embeddings, t0: float
    ) -> EmbeddingResult | None:
        if len(out.vectors) != len(self.items):
            why = f"{len(out.vectors)} vectors for {len(self.items)} texts"
            self.state.failed(ticket)
            self.attempts.append(Attempt(m.name, m.provider, "bad_response", why, 0.0))
            return None
        cost = cost_of(m, out.usage, out.cost_usd)
        n_in = out.usage.input_tokens
        record = UsageRecord(
            time.time(),
            m.name,
            m.provider,
            rule,
            n_in,
            0,
            cost or 0.0,
            self.snap.config.sha256,
            price_known=cost is not None,
        )
        self.state.succeeded(ticket, record, latency_s=time.perf_counter() - t0)
        took = time.perf_counter() - self.started
        return EmbeddingResult(
            out.vectors,
            m.name,
            m.provider,
            out.usage,
            cost,  # None: the price is unknown (counted apart in the usage store, not $0)
            took,
            self.decision,
            tuple(self.attempts),
            rule,
        )

    def exhausted(self) -> NoRouteError:
        tried = ", ".join(f"{a.model} ({a.error})" for a in self.attempts) or "nothing was tried"
        return NoRouteError(
            f"every embedding candidate failed: {tried}", self.decision, self.attempts
        )


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
    run = _Embedding(snap, state, texts, use_case, model, params, hints)
    for rule, m in run.todo:
        ticket = state.admit(m.name, rule, run.tokens, 0.0)
        if isinstance(ticket, str):
            run.refused(m, ticket)
            continue
        t0 = time.perf_counter()
        try:
            out = snap.provider(m.provider).embed(m, run.items, **run.params_for(m))
        except ProviderError as exc:
            run.failed(ticket, m, exc, t0)
            continue
        except BaseException:
            state.failed(ticket)
            raise
        result = run.served(ticket, rule, m, out, t0)
        if result is not None:
            return result
    raise run.exhausted()


async def aembed(
    snap: Snapshot,
    state: LiveState,
    texts: str | Sequence[str],
    *,
    use_case: str | None = None,
    model: str | None = None,
    params: Mapping[str, Any] | None = None,
    hints: Mapping[str, Any] | None = None,
) -> EmbeddingResult:
    """`embed()` for asyncio: the adapters' own async calls (litellm.aembedding)."""
    run = _Embedding(snap, state, texts, use_case, model, params, hints)
    for rule, m in run.todo:
        ticket = await state.aadmit(m.name, rule, run.tokens, 0.0)
        if isinstance(ticket, str):
            run.refused(m, ticket)
            continue
        t0 = time.perf_counter()
        try:
            out = await snap.provider(m.provider).aembed(m, run.items, **run.params_for(m))
        except ProviderError as exc:
            run.failed(ticket, m, exc, t0)
            continue
        except BaseException:  # cancellation included: give back what was held
            state.failed(ticket)
            raise
        result = run.served(ticket, rule, m, out, t0)
        if result is not None:
            return result
    raise run.exhausted()


__all__ = ["EMBEDDINGS", "aembed", "embed", "texts_of"]

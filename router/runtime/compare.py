"""`Router.compare()`: one request to several named models at once, measured side by side.

Each model gets the request as written (no rule's templates: the point is to see
the models, not the rules), streamed so that the time to the first token is real.
Breakers, budgets and rate limits still apply (a model they hold back is a row
with the reason) and what is spent is recorded under the rule name `compare`.
A failure is that model's row; it never stops the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.config.model import ModelConfig
from router.errors import ProviderError, RouterError
from router.providers.base import Call
from router.runtime.calls import cost_of
from router.runtime.snapshot import Snapshot
from router.runtime.state.live import LiveState
from router.runtime.state.usage import UsageRecord
from router.types import Request, Usage

RULE = "compare"  # what spend from compare() is recorded under

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One model's row: its answer and measurements, or the error that stopped it."""

    model: str
    provider: str
    text: str = ""
    ttft_s: float | None = None  # time to the first piece of text
    total_s: float | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None  # None: not served, or the price is unknown (never $0)
    error: str | None = None  # "kind: message" when the model failed or was held back

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "provider": self.provider,
            "ok": self.ok,
            "text": self.text,
            "ttft_s": self.ttft_s,
            "total_s": self.total_s,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "cost_usd": self.cost_usd,
            "price_known": self.cost_usd is not None,
            "error": self.error,
        }


def compare(
    snap: Snapshot,
    state: LiveState,
    request: Request,
    models: Sequence[str],
    clock: Clock = time.perf_counter,
) -> list[Comparison]:
    """Run `request` on every model in `models` in parallel; rows in the order asked."""
    unknown = [m for m in models if m not in snap.config.models]
    if unknown:
        known = ", ".join(snap.config.models)
        raise RouterError(f"unknown model(s) {', '.join(unknown)}; the config has: {known}")
    if not models:
        raise RouterError("compare needs at least one model")
    rows: dict[int, Comparison] = {}
    threads = []
    for i, name in enumerate(models):
        model = snap.config.models[name]
        t = threading.Thread(
            target=lambda i=i, m=model: rows.__setitem__(i, _one(snap, state, request, m, clock)),
            name=f"compare:{name}",
            daemon=True,
        )
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    return [rows[i] for i in range(len(models))]


def _one(
    snap: Snapshot, state: LiveState, request: Request, model: ModelConfig, clock: Clock
) -> Comparison:
    provider = snap.config.providers[model.provider]
    if not provider.enabled:
        why = f"disabled: provider {provider.name}: {provider.disabled_reason}"
        return Comparison(model.name, model.provider, error=why)
    held = state.unavailable_reason(model.name, RULE)
    if held is not None:
        return Comparison(model.name, model.provider, error=f"skipped: {held}")
    tokens = request.tokens + (request.max_tokens or snap.config.settings.default_max_tokens)
    estimate = model.cost.estimate(request.tokens, tokens - request.tokens) if model.cost else 0.0
    ticket = state.admit(model.name, RULE, tokens, estimate)
    if isinstance(ticket, str):
        return Comparison(model.name, model.provider, error=f"skipped: {ticket}")
    call = Call(
        model,
        request.messages,
        dict(request.params),
        tools=request.tools,
        response_format=request.response_format,
        timeout=provider.timeout,
    )
    started = clock()
    first: float | None = None
    parts: list[str] = []
    usage: Usage | None = None
    reported: float | None = None
    try:
        for delta in snap.provider(model.provider).stream(call):
            if delta.text:
                if first is None:
                    first = clock() - started
                parts.append(delta.text)
            if delta.usage is not None:
                usage, reported = delta.usage, delta.cost_usd
    except RouterError as exc:  # a provider's failure, or one creating the provider
        state.failed(ticket, exc if isinstance(exc, ProviderError) else None)
        took = clock() - started
        return Comparison(
            model.name,
            model.provider,
            "".join(parts),
            first,
            took,
            error=f"{getattr(exc, 'kind', 'error')}: {exc}",
        )
    except BaseException:
        state.failed(ticket)
        raise
    total = clock() - started
    usage = usage or Usage()
    cost = cost_of(model, usage, reported)
    record = UsageRecord(
        time.time(),
        model.name,
        model.provider,
        RULE,
        usage.input_tokens,
        usage.output_tokens,
        cost or 0.0,
        snap.config.sha256,
        price_known=cost is not None,
    )
    state.succeeded(ticket, record, latency_s=total)
    return Comparison(model.name, model.provider, "".join(parts), first, total, usage, cost)


__all__ = ["RULE", "Comparison", "compare"]

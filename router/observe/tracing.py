"""OpenTelemetry spans of routed requests (the `otel` extra: opentelemetry-api).

One span per request, named like the GenAI semantic conventions say
(`chat {gen_ai.request.model}`), kind CLIENT, from `route()` to its end, with:

    gen_ai.operation.name        "chat"
    gen_ai.provider.name         the provider of the model that served (config name)
    gen_ai.request.model         the model decided on; gen_ai.response.model: the one
                                 that served (they differ after a fallback)
    gen_ai.request.max_tokens / temperature / top_p   when the request set them
    gen_ai.usage.input_tokens / output_tokens, gen_ai.response.finish_reasons
    error.type                   the error's class name, and the span status ERROR
    router.rule, router.fallbacks (failed tries before the answer), router.cached,
    router.outcome, router.config_version, router.candidates

Each failed try is a span event `router.attempt` (model, error kind, duration).
No prompt, answer or key is written. The span is made when the request ends,
with its real start time, under whatever span is current there.

A Router adds this observer by itself when opentelemetry-api is importable; with no
SDK configured the API's tracer records nothing and costs next to nothing.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from router.errors import MissingDependency
from router.observe.events import RequestEnded

if TYPE_CHECKING:
    from router.runtime.reload.changes import ReloadEvent

TRACER_NAME = "router"


def otel_available() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except ModuleNotFoundError:
        return False


class RouterTracer:
    """An observer that turns each request's end into one span."""

    def __init__(self, tracer_provider: Any | None = None) -> None:
        try:
            from opentelemetry import trace
        except ImportError:
            raise MissingDependency("opentelemetry-api", "otel") from None
        self._trace = trace
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)

    def request_ended(self, event: RequestEnded) -> None:
        trace = self._trace
        res, d = event.result, event.decision
        requested = d.model if d is not None else None
        start_ns = int(event.started_at * 1e9)
        span = self._tracer.start_span(
            f"chat {requested}" if requested else "chat",
            kind=trace.SpanKind.CLIENT,
            start_time=start_ns,
        )
        if span.is_recording():
            span.set_attributes(_attributes(event))
            attempts = res.attempts if res is not None else getattr(event.error, "attempts", ())
            for a in attempts:
                span.add_event(
                    "router.attempt",
                    {
                        "gen_ai.request.model": a.model,
                        "router.provider": a.provider,
                        "error.type": a.error,
                        "router.duration_s": a.duration_s,
                    },
                )
            if event.error is not None:
                span.set_status(trace.Status(trace.StatusCode.ERROR, type(event.error).__name__))
        span.end(end_time=start_ns + int(event.duration_s * 1e9))

    def reloaded(self, event: ReloadEvent) -> None:
        pass

    def close(self) -> None:
        pass


def _attributes(event: RequestEnded) -> dict[str, Any]:
    res, d, req = event.result, event.decision, event.request
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "router.outcome": event.outcome,
        "router.config_version": event.config_version,
        "router.cached": bool(res is not None and res.cached),
        "router.stream": req.stream,
    }
    if d is not None:
        if d.model is not None:
            attrs["gen_ai.request.model"] = d.model
        if d.rule is not None:
            attrs["router.rule"] = d.rule
        attrs["router.candidates"] = len(d.candidates)
        if d.use_case:
            attrs["router.use_case"] = d.use_case
    for key in ("max_tokens", "temperature", "top_p"):
        v = req.params.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            attrs[f"gen_ai.request.{key}"] = v
    if res is not None:
        attrs["gen_ai.provider.name"] = res.provider
        attrs["gen_ai.response.model"] = res.model
        attrs["gen_ai.usage.input_tokens"] = res.usage.input_tokens
        attrs["gen_ai.usage.output_tokens"] = res.usage.output_tokens
        if res.finish_reason:
            attrs["gen_ai.response.finish_reasons"] = [res.finish_reason]
        if res.rule is not None:
            attrs["router.rule"] = res.rule
        attrs["router.fallbacks"] = sum(1 for a in res.attempts if a.error != "skipped")
        attrs["router.cost_usd"] = res.cost_usd
    elif d is not None and d.provider is not None:
        attrs["gen_ai.provider.name"] = d.provider
    if event.error is not None:
        attrs["error.type"] = type(event.error).__name__
    if event.ttft_s is not None:
        attrs["router.time_to_first_token_s"] = event.ttft_s
    return attrs


__all__ = ["RouterTracer", "otel_available"]

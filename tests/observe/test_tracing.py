"""OpenTelemetry spans, collected by the SDK's in-memory exporter, of real routes."""

from __future__ import annotations

import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from router import NoRouteError, Router
from router.errors import MissingDependency
from router.observe.tracing import RouterTracer
from router.testing import server_error
from tests.observe.conftest import CANARY


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter, RouterTracer(provider)
    provider.shutdown()


def test_a_served_request_is_one_span_with_genai_attributes(write_config, fake, spans):
    exporter, tracer = spans
    with Router.from_config(write_config(), observers=[tracer]) as r:
        fake.enqueue(server_error(503))
        res = r.route("secret zebra", use_case="coding", temperature=0, max_tokens=20)
    (span,) = exporter.get_finished_spans()
    a = span.attributes
    assert span.name == "chat large" and span.kind == SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "large" and a["gen_ai.response.model"] == "small"
    assert a["gen_ai.provider.name"] == "fake"
    assert a["gen_ai.request.temperature"] == 0 and a["gen_ai.request.max_tokens"] == 20
    assert a["gen_ai.usage.input_tokens"] == res.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == res.usage.output_tokens
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["router.rule"] == "coding" and a["router.fallbacks"] == 1
    assert a["router.cached"] is False and a["router.outcome"] == "ok"
    (event,) = span.events
    assert event.name == "router.attempt" and event.attributes["error.type"] == "unavailable"
    assert span.end_time - span.start_time == pytest.approx(res.latency_s * 1e9, rel=0.5)
    dumped = str(span.to_json())
    assert "zebra" not in dumped and CANARY not in dumped


def test_a_request_that_cannot_route_is_an_error_span(write_config, fake, spans):
    exporter, tracer = spans
    with Router.from_config(write_config(), observers=[tracer]) as r, pytest.raises(NoRouteError):
        r.route("x " * 20000)
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "NoRouteError"
    assert span.attributes["router.outcome"] == "no_route"


def test_streams_and_cache_hits_are_spans_too(write_config, fake, spans):
    exporter, tracer = spans
    with Router.from_config(write_config("  cache: {ttl: 60}"), observers=[tracer]) as r:
        list(r.route("s", stream=True))
        list(r.route("s", stream=True))
    first, second = exporter.get_finished_spans()
    assert first.attributes["router.stream"] is True
    assert "router.time_to_first_token_s" in first.attributes
    assert first.attributes["router.cached"] is False and second.attributes["router.cached"]


def test_without_opentelemetry_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(MissingDependency, match=r"llm-router\[otel\]"):
        RouterTracer()

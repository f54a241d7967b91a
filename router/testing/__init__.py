"""Test helpers shipped with the package: a fake LLM provider over real HTTP.

    from router.testing import FakeProviderServer, rate_limited, reply

Standard library only, so importing it costs nothing and pulls in no client library.
"""

from __future__ import annotations

from router.testing.fake_server import FakeProviderServer, RecordedRequest
from router.testing.outcomes import (
    Outcome,
    bad_request,
    context_overflow,
    disconnect,
    rate_limited,
    reply,
    server_error,
    slow,
    slow_stream,
    unauthorized,
)

__all__ = [
    "FakeProviderServer",
    "Outcome",
    "RecordedRequest",
    "bad_request",
    "context_overflow",
    "disconnect",
    "rate_limited",
    "reply",
    "server_error",
    "slow",
    "slow_stream",
    "unauthorized",
]

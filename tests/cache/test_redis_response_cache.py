"""`settings.cache: {backend: redis}` on the request path: one cache for every Router and
process on a real redis-server, and a Redis that dies never stops a request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from router import Router
from router.errors import ConfigError
from tests.observe.conftest import CANARY

ROOT = Path(__file__).resolve().parents[2]


def _wait_until(check, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return False


def _settings(url: str, extra: str = "") -> str:
    return f"  cache: {{ttl: 600, backend: redis, url: '{url}', timeout_ms: 500{extra}}}"


def test_two_routers_share_answers_through_redis(write_config, fake, redis_server):
    cfg = write_config(_settings(redis_server.url))
    with Router.from_config(cfg) as first, Router.from_config(cfg) as second:
        a = first.route("shared question", temperature=0)
        b = second.route("shared question", temperature=0)
        assert not a.cached and b.cached and b.text == a.text and b.cost_usd == 0.0
        assert second.status().cache == {
            **second.status().cache,
            "backend": "redis",
            "connected": True,
        }
    assert len(fake.requests) == 1


def test_the_state_url_is_the_default_and_keys_take_the_state_prefix(
    write_config, fake, redis_server
):
    state = f"  state: {{url: '{redis_server.url}', prefix: 'fleet1:'}}\n"
    cfg = write_config(state + "  cache: {ttl: 600, backend: redis}")
    with Router.from_config(cfg) as r:
        r.route("where do keys go")
        assert r.route("where do keys go").cached
        assert r.config.settings.cache_store.prefix == "fleet1:cache:"
    assert len(fake.requests) == 1


def test_a_redis_backend_needs_a_redis_url(write_config):
    with pytest.raises(ConfigError) as err:
        Router.from_config(write_config("  cache: {ttl: 60, backend: redis}"))
    assert "settings.cache.url or settings.state" in str(err.value)


def test_a_hit_across_two_os_processes(write_config, fake, redis_server):
    cfg = write_config(_settings(redis_server.url))
    script = (
        "import sys\n"
        "from router import Router\n"
        "with Router.from_config(sys.argv[1]) as r:\n"
        "    res = r.route('across processes', temperature=0)\n"
        "    print(res.cached, res.text)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAKE_KEY": CANARY}
    out = subprocess.run(
        [sys.executable, "-c", script, str(cfg)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split(" ", 1)
    assert out[0] == "False"
    with Router.from_config(cfg) as r:
        res = r.route("across processes", temperature=0)
    assert res.cached and res.text == out[1].strip()
    assert len(fake.requests) == 1


def test_redis_killed_mid_run_requests_are_served_then_hits_return(
    write_config, fake, redis_server, caplog
):
    cfg = write_config(_settings(redis_server.url) + "\n  request_log: requests.jsonl")
    with Router.from_config(cfg) as r:
        r.route("before the outage")
        assert r.route("before the outage").cached
        redis_server.stop()
        served = [r.route("during the outage") for _ in range(5)]  # bounded
        assert all(not s.cached and s.text for s in served)
        assert r.status().cache["connected"] is False
        outage_warnings = [
            rec for rec in caplog.records if "response cache: Redis" in rec.getMessage()
        ]
        assert len(outage_warnings) == 1
        redis_server.start()
        link_up = _wait_until(lambda: r.status().cache["connected"])
        assert link_up
        r.route("after the outage")
        assert r.route("after the outage").cached
    assert len(fake.requests) == 1 + 5 + 1
    log = [json.loads(x) for x in (cfg.parent / "requests.jsonl").read_text().splitlines()]
    assert [x["cache"] for x in log] == ["miss", "hit", *["miss"] * 5, "miss", "hit"]

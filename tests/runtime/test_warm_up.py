"""The litellm import happens off the request path and never counts as latency."""

from __future__ import annotations

import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from router import Router
from router.runtime import attempts, snapshot
from tests.engine.builders import model, rule

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
providers: {p: {type: litellm, api_base: 'http://127.0.0.1:9/v1', api_key: k}}
models: {m: {provider: p, model: openai/gpt-4o-mini}}
rules: [{name: d, targets: [m]}]
settings: {usage_db: ':memory:'}
"""


@pytest.mark.parametrize("warm", [True, False])
def test_a_router_imports_litellm_in_the_background(tmp_path: Path, warm: bool) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG)
    code = (
        "import sys\n"
        "from router import Router\n"
        f"r = Router.from_config({str(path)!r}, warm={warm})\n"
        "assert 'litellm' not in sys.modules or r.warmed.is_set()\n"
        "assert r.warmed.wait(120)\n"
        "print('litellm' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(warm)


def test_creating_an_adapter_is_not_latency(make_config, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    clock = types.SimpleNamespace(
        perf_counter=lambda: now[0], monotonic=time.monotonic, time=time.time, sleep=time.sleep
    )
    monkeypatch.setattr(attempts, "time", clock)
    real = snapshot.create_provider

    def slow_create(config):  # type: ignore[no-untyped-def]
        now[0] += 10.0  # an import of litellm that took ten seconds
        return real(config)

    monkeypatch.setattr(snapshot, "create_provider", slow_create)
    cfg = make_config([rule("r", ["a"])], models=[model("a")])
    with Router(cfg, warm=False) as r:
        res = r.route("hi")
        assert res.latency_s < 10.0
        latency = r._live.latency("a")
        assert latency is not None and latency < 10.0

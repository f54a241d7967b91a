"""The package's top level: lazy imports and module-level route()."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import router
from router.runtime import default as runtime

ROOT = Path(__file__).resolve().parents[1]


def test_import_router_loads_no_heavy_library():
    code = (
        "import sys, router; "
        "heavy = [m for m in ('litellm', 'llama_cpp', 'jinja2', 'jsonschema', 'watchdog', "
        "'yaml', 'redis', 'router.runtime.router', 'router.server', 'starlette', 'uvicorn', "
        "'uvloop', 'httptools', 'openai', 'anyio') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture
def fresh_default(monkeypatch):
    monkeypatch.setattr(runtime, "_default", None)
    yield
    if runtime._default is not None:
        runtime._default.close()
    monkeypatch.setattr(runtime, "_default", None)


def test_module_route_uses_router_config(monkeypatch, fresh_default):
    monkeypatch.setenv("ROUTER_CONFIG", str(ROOT / "examples/configs/dry-run.yaml"))
    res = router.route("hello there", use_case="chat")
    assert res.model == "small" and res.text == "[small-1] hello there"
    assert router.explain("Fix this stack trace").rule == "coding"


def test_default_config_path_order(monkeypatch, tmp_path):
    monkeypatch.delenv("ROUTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    shipped = runtime.default_config_path()
    # the copy inside the package (router/rules in the wheel; a link to rules/ here)
    assert shipped.resolve() == (ROOT / "rules" / "default.yaml").resolve()
    (tmp_path / "router.yaml").write_text("rules: []\n")
    assert runtime.default_config_path() == Path("router.yaml")
    monkeypatch.setenv("ROUTER_CONFIG", "/etc/x.yaml")
    assert runtime.default_config_path() == Path("/etc/x.yaml")


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        router.nope  # noqa: B018

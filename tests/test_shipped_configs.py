"""Every config we ship loads, passes its own routing tests, and the examples run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from router import Router

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted([*ROOT.glob("rules/*.yaml"), *ROOT.glob("examples/configs/*.yaml")])


def test_there_are_shipped_configs():
    names = {p.name for p in SHIPPED}
    assert {"dry-run.yaml", "cloud-first.yaml"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_loads_and_its_tests_pass(path):
    r = Router.from_config(path, environ={})
    outcomes = r.run_tests()
    assert outcomes, f"{path.name} should carry routing tests"
    assert all(o.ok for o in outcomes), [o.message for o in outcomes if not o.ok]
    r.close()


def test_basic_example_runs_on_the_dry_run_config():
    proc = subprocess.run(
        [sys.executable, "examples/basic.py", "examples/configs/dry-run.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "-> large after 1 failed attempt(s)" in proc.stdout
    assert "-> small: '[small-1] hello, how are you?'" in proc.stdout

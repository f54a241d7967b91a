"""The built wheel carries what `route()` needs outside the repo: rules/default.yaml."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_ships_the_default_config_and_route_finds_it(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if build.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip()[-300:]}")
    wheel = next(out.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "router/rules/default.yaml" in names
    assert "router/schemas/config.schema.json" in names
    for console_file in ("templates/base.html", "static/console.js", "static/console.css"):
        assert f"router/server/console/{console_file}" in names  # the web console's pages
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ROUTER_CONFIG", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    code = (
        "import router, pathlib\n"
        "from router.runtime.default import default_config_path\n"
        "p = default_config_path()\n"
        f"assert pathlib.Path(router.__file__).is_relative_to({str(site)!r}), router.__file__\n"
        f"assert p.resolve().is_relative_to({str(site)!r}), p\n"
        "print(router.explain('What is the capital of Peru?').rule)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "chat"

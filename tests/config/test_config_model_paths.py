"""A local model's file stays inside models_dir after every expansion (`~`, `..`,
symlinks); only a path the config writes as absolute is taken as written. Refusals and
over-long paths are ConfigErrors at the model's line, found by `load_config`."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import load_config
from tests.config.conftest import Write, issues_of

LOCAL = """
providers:
  local: {{type: llama_cpp, models_dir: "{root}"}}
models:
  m: {{provider: local, {model}}}
rules: [{{name: all, targets: [m]}}]
"""


def _config(write: Write, tmp_path: Path, model: str) -> Path:
    root = tmp_path / "models"
    root.mkdir(exist_ok=True)
    return write(LOCAL.format(root=root, model=model))


@pytest.mark.parametrize(
    "model",
    [
        'model: "~/../../tmp/x/secret.gguf"',
        'model: "../outside.gguf"',
        'path: "~/../../etc/secret.gguf"',
        'model: "sub/../../../outside.gguf"',
    ],
)
def test_expanded_paths_leaving_models_dir_are_config_errors(
    write: Write, tmp_path: Path, model: str
) -> None:
    path = _config(write, tmp_path, model)
    [issue] = issues_of(path)
    key = model.split(":")[0]
    assert issue.pointer == f"models.m.{key}"
    assert issue.line == 4
    assert "outside models_dir" in issue.message


def test_a_symlink_out_of_models_dir_is_refused(write: Write, tmp_path: Path) -> None:
    path = _config(write, tmp_path, 'model: "link.gguf"')
    (tmp_path / "models" / "link.gguf").symlink_to(tmp_path / "elsewhere.gguf")
    [issue] = issues_of(path)
    assert "outside models_dir" in issue.message


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ('model: "' + "a" * 300 + '.gguf"', "longer than 255 bytes"),
        ('model: "' + "/".join(["abcdefgh"] * 600) + '.gguf"', "longer than 4096 bytes"),
    ],
)
def test_over_long_paths_are_config_errors(
    write: Write, tmp_path: Path, model: str, words: str
) -> None:
    path = _config(write, tmp_path, model)
    [issue] = issues_of(path)
    assert issue.pointer == "models.m.model"
    assert words in issue.message


def test_paths_inside_and_absolute_paths_load(write: Write, tmp_path: Path) -> None:
    for model in ('model: "sub/q.gguf"', f'path: "{tmp_path}/x.gguf"', f'model: "{tmp_path}/y"'):
        load_config(_config(write, tmp_path, model), environ={})


def test_tilde_inside_models_dir_is_allowed(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "models"))
    config = load_config(_config(write, tmp_path, 'model: "~/q.gguf"'), environ={})
    assert config.models["m"].model == "~/q.gguf"

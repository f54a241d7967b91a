"""Each provider type declares its settings: an unknown key is an error at its line."""

from __future__ import annotations

import pytest

from router.config import load_config
from router.errors import ConfigError
from tests.config.conftest import Write


def _issue(write: Write, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(text), environ={})
    return str(info.value)


MODEL = "models:\n  m: {provider: p}\nrules: [{name: d, targets: [m]}]\n"


@pytest.mark.parametrize(
    ("provider", "key", "hint"),
    [
        ("{type: litellm, ssl_verfy: false}", "ssl_verfy", "ssl_verify"),
        ("{type: litellm, api_verison: '2024-02-01'}", "api_verison", "api_version"),
        ("{type: litellm, header: {a: b}}", "header", "headers"),
        ("{type: llama_cpp, n_gpu_layer: 1}", "n_gpu_layer", "n_gpu_layers"),
        ("{type: mock, repl: x}", "repl", "reply"),
    ],
)
def test_unknown_provider_key_is_an_error_with_a_hint(
    write: Write, provider: str, key: str, hint: str
) -> None:
    text = f"providers:\n  p: {provider}\n{MODEL}"
    message = _issue(write, text)
    assert f"rules.yaml:2: providers.p.{key}: unknown key '{key}'" in message
    assert f"did you mean '{hint}'?" in message


def test_a_key_of_another_type_is_unknown(write: Write) -> None:
    message = _issue(write, f"providers:\n  p: {{type: litellm, models_dir: /x}}\n{MODEL}")
    assert "providers.p.models_dir: unknown key 'models_dir'" in message


@pytest.mark.parametrize(
    ("model", "key", "hint"),
    [
        ("{provider: p, contxt: 4096}", "contxt", "context"),
        ("{provider: p, max_token: 5}", "max_token", "max_output"),
        ("{provider: p, n_ctx: 512}", "n_ctx", None),  # a llama_cpp key on a litellm model
    ],
)
def test_unknown_model_key_is_an_error_at_its_line(
    write: Write, model: str, key: str, hint: str | None
) -> None:
    text = (
        "providers:\n  p: {type: litellm}\n"
        f"models:\n  m: {model}\n"
        "rules: [{name: d, targets: [m]}]\n"
    )
    message = _issue(write, text)
    assert f"rules.yaml:4: models.m.{key}: unknown key '{key}'" in message
    if hint:
        assert f"did you mean '{hint}'?" in message


def test_declared_keys_load(write: Write) -> None:
    text = (
        "providers:\n"
        "  p: {type: litellm, api_version: '2024-02-01', organization: org-1, verify: false,"
        " headers: {X-A: b}, api: openai}\n"
        "  l: {type: llama_cpp, models_dir: /tmp, n_gpu_layers: 0, temperature: 0.2}\n"
        "  k: {type: mock, reply: hi}\n"
        "models:\n"
        "  m: {provider: p, model: openai/x, headers: {X-B: c}}\n"
        "  g: {provider: l, model: g.gguf, n_ctx: 512, max_tokens: 16, stop: [x]}\n"
        "  k: {provider: k, reply: yo}\n"
        "rules: [{name: d, targets: [m, g, k]}]\n"
    )
    config = load_config(write(text), environ={})
    assert config.providers["p"].settings["api_version"] == "2024-02-01"
    assert config.providers["p"].settings["verify"] is False
    assert config.models["g"].settings["n_ctx"] == 512

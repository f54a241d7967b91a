"""Every key of the format lands in the right dataclass field."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import (
    BreakerPolicy,
    Budget,
    Config,
    Cost,
    RetryPolicy,
    Settings,
    load_config,
)
from router.secrets import Secret
from tests.config.conftest import Write

FULL = r"""
providers:
  openai:
    type: litellm
    api_key: "${OPENAI_API_KEY}"
    api_base: https://api.example.test/v1
    timeout: 60
    retries: 4
    backoff: 0.25
    max_backoff: 3
    headers: {X-Team: routing, Authorization: "Bearer ${TEAM_TOKEN}"}
  local:
    type: llama_cpp
    models_dir: "${MODELS_DIR:-~/.cache/router/models}"
    n_gpu_layers: 0
    n_ctx: 4096
    max_loaded: 2
    idle_ttl: 300
  echo: {type: mock, reply: "ok {prompt}", delay: 0.01, fail: timeout}
  off: {type: mock, enabled: false}
models:
  gpt-4o-mini:
    provider: openai
    model: openai/gpt-4o-mini
    context: 128000
    cost: {input: 0.15, output: 0.60}
    capabilities: [tools, vision, json]
    max_output: 16384
    weight: 3
    latency_ms: 450
    rpm: 500
    tpm: 200000
    breaker: {failures: 3, window: 30, cooldown: 10}
  qwen-coder:
    provider: local
    model: qwen2.5-coder-7b-q4_k_m.gguf
    n_ctx: 8192
    chat_format: chatml
    package: some-gguf-package
  echo-model: {provider: echo}
rules:
  - name: coding
    description: code questions
    when:
      use_case: [coding, debugging]
      tokens: {gt: 10, lte: 60000}
      any: [{matches: '(?i)\bdef\b'}, {contains: [stack trace]}]
      not: {tags: [no-code]}
      metadata: {team: core}
    targets: [qwen-coder, gpt-4o-mini]
    strategy: weighted
    max_cost: 0.02
    params: {temp: 0.2, max_new_tokens: 512, top_p: 0.9}
    system: "You are a careful {{ language | default('Python') }} engineer."
    prompt: "Task: {{ prompt }}"
    fallback: default
    on_budget: error
    on_rate_limit: wait
    retries: 1
    backoff: 0.1
    weights: {qwen-coder: 2, gpt-4o-mini: 1}
    deadline: 30
  - name: default
    targets: [echo-model]
use_cases:
  coding: {matches: '(?i)\b(def|class)\b', contains: [compile, stack trace]}
  chat: {contains: hello}
tests:
  - prompt: Fix this function
    use_case: coding
    tags: [a, b]
    metadata: {team: core}
    expect: {model: qwen-coder, rule: coding, provider: local}
  - {prompt: hi}
budgets:
  - {scope: global, daily: 5, monthly: 100}
  - {scope: rule, name: coding, daily: 1}
  - {scope: model, name: gpt-4o-mini, monthly: 20}
settings: {default_max_tokens: 512, deadline: 60, usage_db: /tmp/usage.sqlite, debounce_ms: 250}
"""

ENV = {"OPENAI_API_KEY": "sk-test-abcdefgh", "TEAM_TOKEN": "tok-123456"}


@pytest.fixture
def full(write: Write) -> Config:
    return load_config(write(FULL), environ=ENV)


def test_providers(full: Config) -> None:
    openai = full.providers["openai"]
    assert openai.name == "openai" and openai.type == "litellm"
    assert isinstance(openai.api_key, Secret) and openai.api_key.reveal() == "sk-test-abcdefgh"
    assert openai.api_base == "https://api.example.test/v1"
    assert openai.timeout == 60.0
    assert openai.retry == RetryPolicy(retries=4, backoff=0.25, max_backoff=3.0)
    assert openai.enabled and openai.disabled_reason is None
    headers = openai.settings["headers"]
    assert headers["X-Team"] == "routing"
    # a credential: the real text for the adapter, masked in any repr
    assert headers["Authorization"] == "Bearer tok-123456"
    assert "tok-123456" not in repr(openai)
    assert set(openai.settings) == {"headers"}

    local = full.providers["local"]
    assert local.type == "llama_cpp" and local.api_key is None and local.timeout is None
    assert dict(local.settings) == {
        "models_dir": "~/.cache/router/models",  # `~` is for the adapter to expand
        "n_gpu_layers": 0,
        "n_ctx": 4096,
        "max_loaded": 2,
        "idle_ttl": 300,
    }
    assert local.retry == RetryPolicy()

    echo = full.providers["echo"]
    assert dict(echo.settings) == {"reply": "ok {prompt}", "delay": 0.01, "fail": "timeout"}
    assert full.providers["off"].disabled_reason == "disabled in config"
    assert not full.providers["off"].enabled
    assert "enabled" not in full.providers["off"].settings


def test_where_points_at_the_definition(full: Config, tmp_path: Path) -> None:
    where = full.providers["local"].where
    assert (where.file, where.line, where.pointer) == (
        str(tmp_path / "rules.yaml"),
        11,
        "providers.local",
    )
    assert full.models["qwen-coder"].where.line == 33
    assert full.rules[1].where.line == 62 and full.rules[1].where.pointer == "rules[1]"
    assert full.tests[1].where.line == 73
    assert full.budgets[2].where.line == 77


def test_models(full: Config) -> None:
    m = full.models["gpt-4o-mini"]
    assert (m.name, m.provider, m.model, m.context) == (
        "gpt-4o-mini",
        "openai",
        "openai/gpt-4o-mini",
        128000,
    )
    assert m.cost == Cost(input=0.15, output=0.60)
    assert m.capabilities == frozenset({"tools", "vision", "json"})
    assert (m.max_output, m.weight, m.latency_ms, m.rpm, m.tpm) == (16384, 3.0, 450.0, 500, 200000)
    assert m.breaker == BreakerPolicy(failures=3, window=30.0, cooldown=10.0)
    assert dict(m.settings) == {}

    q = full.models["qwen-coder"]
    assert q.model == "qwen2.5-coder-7b-q4_k_m.gguf"
    assert dict(q.settings) == {
        "n_ctx": 8192,
        "chat_format": "chatml",
        "package": "some-gguf-package",
    }

    e = full.models["echo-model"]  # every default
    assert e.model == "echo-model" and e.context == 8192 and e.cost is None
    assert e.capabilities == frozenset() and e.max_output is None and e.weight == 1.0
    assert e.latency_ms is None and e.rpm is None and e.tpm is None
    assert e.breaker == BreakerPolicy()


def test_rules(full: Config) -> None:
    coding, default = full.rules
    assert coding.name == "coding"
    assert coding.targets == ("qwen-coder", "gpt-4o-mini")
    assert coding.when == {
        "use_case": ["coding", "debugging"],
        "tokens": {"gt": 10, "lte": 60000},
        "any": [{"matches": r"(?i)\bdef\b"}, {"contains": ["stack trace"]}],
        "not": {"tags": ["no-code"]},
        "metadata": {"team": "core"},
    }
    assert coding.strategy == "weighted"
    assert coding.max_cost == 0.02
    # aliases normalised: temp -> temperature, max_new_tokens -> max_tokens
    assert dict(coding.params) == {"temperature": 0.2, "max_tokens": 512, "top_p": 0.9}
    assert coding.system == "You are a careful {{ language | default('Python') }} engineer."
    assert coding.prompt == "Task: {{ prompt }}"
    assert coding.fallback == "default"
    assert (coding.on_budget, coding.on_rate_limit) == ("error", "wait")
    assert coding.retry == RetryPolicy(retries=1, backoff=0.1, max_backoff=8.0)
    assert dict(coding.weights) == {"qwen-coder": 2.0, "gpt-4o-mini": 1.0}
    assert coding.deadline == 30.0

    assert default.when is None and default.strategy == "ordered" and default.retry is None
    assert default.max_cost is None and dict(default.params) == {} and default.fallback is None
    assert (default.on_budget, default.on_rate_limit) == ("fallback", "skip")
    assert default.system is None and default.prompt is None and default.deadline is None


def test_use_cases_tests_budgets_settings(full: Config) -> None:
    coding = full.use_cases["coding"]
    assert coding.matches == r"(?i)\b(def|class)\b"
    assert coding.contains == ("compile", "stack trace")
    assert full.use_cases["chat"].contains == ("hello",) and full.use_cases["chat"].matches is None

    first, second = full.tests
    assert first.prompt == "Fix this function" and first.use_case == "coding"
    assert first.tags == ("a", "b") and dict(first.metadata) == {"team": "core"}
    assert dict(first.expect) == {"model": "qwen-coder", "rule": "coding", "provider": "local"}
    assert second.prompt == "hi" and second.use_case is None and dict(second.expect) == {}

    assert [(b.scope, b.name, b.daily, b.monthly) for b in full.budgets] == [
        ("global", None, 5.0, 100.0),
        ("rule", "coding", 1.0, None),
        ("model", "gpt-4o-mini", None, 20.0),
    ]
    assert full.settings == Settings(
        default_max_tokens=512, deadline=60.0, usage_db="/tmp/usage.sqlite", debounce_ms=250
    )


def test_files_and_hash(full: Config, tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "rules.yaml"
    assert full.files == (str(path.resolve()),)
    assert full.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_budget_mapping_form(write: Write) -> None:
    path = write(
        """
        providers: {echo: {type: mock}}
        models: {small: {provider: echo}}
        rules:
          - {name: coding, when: {use_case: coding}, targets: [small]}
        budgets:
          global: {daily: 5, monthly: 100}
          rules: {coding: {daily: 1.5}}
          models: {small: {monthly: 20}}
        """
    )
    config = load_config(path, environ={})
    assert [(b.scope, b.name, b.daily, b.monthly, b.where.line) for b in config.budgets] == [
        ("global", None, 5.0, 100.0, 6),
        ("rule", "coding", 1.5, None, 7),
        ("model", "small", None, 20.0, 8),
    ]
    assert all(isinstance(b, Budget) for b in config.budgets)


def test_minimal_config_gets_defaults(write: Write) -> None:
    path = write(
        """
        providers: {echo: {type: mock}}
        models: {small: {provider: echo}}
        rules: [{name: default, targets: [small]}]
        """
    )
    config = load_config(path, environ={})
    assert config.settings == Settings()
    assert config.use_cases == {} and config.tests == () and config.budgets == ()
    assert config.providers["echo"].retry == RetryPolicy()


def test_empty_when_is_a_catch_all(write: Write) -> None:
    path = write(
        """
        providers: {echo: {type: mock}}
        models: {small: {provider: echo}}
        rules:
          - {name: a, when: {}, targets: [small]}
          - name: b
            when:
            targets: [small]
        """
    )
    with pytest.raises(Exception) as info:
        load_config(path, environ={})
    # `when: {}` matched everything, so b below it can never match
    assert "rule 'b' can never match: rule 'a' (line 4)" in str(info.value)


def test_yaml_anchors_and_merge_keys(write: Write) -> None:
    path = write(
        """
        x-defaults: &defaults {provider: echo, context: 32000, capabilities: [json]}
        providers: {echo: {type: mock}}
        models:
          a: {<<: *defaults, context: 4096}
          b:
            <<: *defaults
        rules: [{name: default, targets: [a, b]}]
        """
    )
    config = load_config(path, environ={})
    assert config.models["a"].context == 4096  # the mapping's own key wins
    assert config.models["b"].context == 32000
    assert config.models["b"].capabilities == frozenset({"json"})


def test_unquoted_variable_reads_as_a_number(write: Write) -> None:
    path = write(
        """
        providers:
          echo:
            type: mock
            timeout: ${TIMEOUT:-30}
            retries: ${RETRIES}
            reply: "${RETRIES}"
        models: {small: {provider: echo}}
        rules: [{name: default, targets: [small]}]
        """
    )
    echo = load_config(path, environ={"RETRIES": "3"}).providers["echo"]
    assert echo.timeout == 30.0 and echo.retry.retries == 3
    assert echo.settings["reply"] == "3"  # quoted: stays a string


def test_dates_stay_text(write: Write) -> None:
    path = write(
        """
        providers: {echo: {type: mock}}
        models: {small: {provider: echo}}
        rules: [{name: d, when: {metadata: {since: 2024-01-01}}, targets: [small]}]
        """
    )
    assert load_config(path, environ={}).rules[0].when == {"metadata": {"since": "2024-01-01"}}

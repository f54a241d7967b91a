"""diff_configs on Config objects built straight from the dataclasses."""

from __future__ import annotations

import dataclasses

import pytest

from router.config.model import (
    Budget,
    Config,
    Cost,
    ModelConfig,
    ProviderConfig,
    RetryPolicy,
    RoutingTest,
    RuleConfig,
    Settings,
    UseCaseConfig,
    Where,
)
from router.runtime.reload.changes import ConfigChanges, ReloadEvent, diff_configs
from router.secrets import Secret

CANARY = "sk-canary-0123456789abcdef"


def make_config(
    rules: list[RuleConfig] | None = None,
    models: list[ModelConfig] | None = None,
    providers: list[ProviderConfig] | None = None,
    **kw: object,
) -> Config:
    providers = providers or [
        ProviderConfig("openai", "litellm", api_key=Secret(CANARY)),
        ProviderConfig("local", "mock"),
    ]
    models = models or [
        ModelConfig("gpt-4o", "openai", "openai/gpt-4o", cost=Cost(2.5, 10.0)),
        ModelConfig("gpt-4o-mini", "openai", "openai/gpt-4o-mini", cost=Cost(0.15, 0.6)),
        ModelConfig("qwen-coder", "local", "qwen2.5-coder.gguf", context=32768),
    ]
    rules = rules or [
        RuleConfig("coding", ("qwen-coder", "gpt-4o-mini"), when={"use_case": "coding"}),
        RuleConfig("default", ("gpt-4o-mini",)),
    ]
    return Config(
        providers={p.name: p for p in providers},
        models={m.name: m for m in models},
        rules=tuple(rules),
        **kw,  # type: ignore[arg-type]
    )


def replace_rule(cfg: Config, name: str, **changes: object) -> Config:
    rules = tuple(dataclasses.replace(r, **changes) if r.name == name else r for r in cfg.rules)  # type: ignore[arg-type]
    return dataclasses.replace(cfg, rules=rules)


def replace_model(cfg: Config, name: str, **changes: object) -> Config:
    models = dict(cfg.models)
    models[name] = dataclasses.replace(models[name], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(cfg, models=models)


def replace_provider(cfg: Config, name: str, **changes: object) -> Config:
    providers = dict(cfg.providers)
    providers[name] = dataclasses.replace(providers[name], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(cfg, providers=providers)


def test_identical_configs_have_no_changes() -> None:
    a = make_config()
    changes = diff_configs(a, make_config())
    assert changes.is_empty
    assert not changes.routing_changed
    assert changes.describe() == []
    assert str(changes) == "no changes"


def test_where_is_not_a_change() -> None:
    a = make_config()
    b = replace_rule(a, "coding", where=Where("x.yaml", 40, "/rules/0"))
    b = replace_model(b, "gpt-4o", where=Where("x.yaml", 3))
    b = replace_provider(b, "openai", where=Where("x.yaml", 1))
    assert diff_configs(a, b).is_empty


def test_rule_targets_changed_in_words() -> None:
    a = make_config()
    b = replace_rule(a, "coding", targets=("gpt-4o-mini",))
    changes = diff_configs(a, b)
    assert changes.rules_changed == {"coding": ("targets qwen-coder, gpt-4o-mini -> gpt-4o-mini",)}
    assert changes.describe() == ["rule coding: targets qwen-coder, gpt-4o-mini -> gpt-4o-mini"]


def test_rule_fields() -> None:
    a = make_config()
    b = replace_rule(
        a,
        "coding",
        when={"use_case": "code"},
        strategy="cheapest",
        max_cost=0.01,
        system="You are {{ role }}",
        params={"temperature": 0.2},
        retry=RetryPolicy(retries=4),
    )
    lines = diff_configs(a, b).rules_changed["coding"]
    assert "when {use_case: coding} -> {use_case: code}" in lines
    assert "strategy ordered -> cheapest" in lines
    assert "max_cost none -> 0.01" in lines
    assert "system added" in lines  # templates are named, not printed
    assert "params {} -> {temperature: 0.2}" in lines
    assert "retry none -> {retries=4, backoff=0.5, max_backoff=8.0}" in lines
    c = replace_rule(b, "coding", retry=RetryPolicy(retries=1))
    assert diff_configs(b, c).rules_changed["coding"] == ("retry.retries 4 -> 1",)
    d = replace_rule(c, "coding", system="You are {{ other }}")
    assert diff_configs(c, d).rules_changed["coding"] == ("system changed",)


def test_rules_added_removed_and_reordered() -> None:
    a = make_config()
    long_docs = RuleConfig("long-docs", ("gpt-4o",), when={"tokens": {"gt": 8000}})
    b = dataclasses.replace(a, rules=(long_docs, a.rules[1]))
    changes = diff_configs(a, b)
    assert changes.rules_added == ("long-docs",)
    assert changes.rules_removed == ("coding",)
    assert not changes.rules_reordered
    assert "rule long-docs added" in changes.describe()
    assert "rule coding removed" in changes.describe()

    c = dataclasses.replace(a, rules=(a.rules[1], a.rules[0]))
    swapped = diff_configs(a, c)
    assert swapped.rules_reordered
    assert swapped.describe() == ["rule order: coding, default -> default, coding"]


def test_model_changes() -> None:
    a = make_config()
    b = replace_model(a, "gpt-4o", cost=Cost(2.0, 8.0), capabilities=frozenset({"vision", "tools"}))
    lines = diff_configs(a, b).describe()
    assert "model gpt-4o: cost 2.5/10.0 -> 2.0/8.0" in lines
    assert "model gpt-4o: capabilities none -> tools, vision" in lines
    c = replace_model(a, "qwen-coder", cost=Cost(0.0, 0.0), settings={"n_ctx": 4096})
    lines = diff_configs(a, c).describe()
    assert "model qwen-coder: cost none -> 0.0/0.0" in lines
    assert "model qwen-coder: settings changed (n_ctx)" in lines
    models = [m for m in a.models.values() if m.name != "gpt-4o"]
    models.append(ModelConfig("claude", "openai", "anthropic/claude"))
    d = dataclasses.replace(a, models={m.name: m for m in models})
    changes = diff_configs(a, d)
    assert changes.models_added == ("claude",)
    assert changes.models_removed == ("gpt-4o",)


def test_provider_change_names_fields_never_values() -> None:
    a = make_config()
    other_key = "sk-other-9876543210fedcba"
    b = replace_provider(
        a,
        "openai",
        api_key=Secret(other_key),
        settings={"headers": {"Authorization": f"Bearer {other_key}"}},
    )
    changes = diff_configs(a, b)
    assert changes.providers_changed == {"openai": ("api_key", "settings.headers")}
    text = "\n".join(changes.describe()) + repr(changes) + str(changes)
    assert "provider openai changed (api_key, settings.headers)" in text
    assert CANARY not in text
    assert other_key not in text


def test_same_secret_value_is_no_change() -> None:
    a = make_config()
    b = replace_provider(a, "openai", api_key=Secret(CANARY))  # a new object, same value
    assert diff_configs(a, b).is_empty


def test_providers_added_removed() -> None:
    a = make_config()
    providers = dict(a.providers)
    providers["anthropic"] = ProviderConfig("anthropic", "litellm")
    b = dataclasses.replace(a, providers=providers)
    changes = diff_configs(a, b)
    assert changes.providers_added == ("anthropic",)
    assert diff_configs(b, a).providers_removed == ("anthropic",)
    assert "provider anthropic added" in changes.describe()
    c = replace_provider(a, "openai", disabled_reason="OPENAI_API_KEY is not set")
    assert diff_configs(a, c).providers_changed == {"openai": ("disabled_reason",)}
    d = replace_provider(a, "openai", retry=RetryPolicy(retries=5))
    assert diff_configs(a, d).providers_changed == {"openai": ("retry.retries",)}


def test_other_sections() -> None:
    a = make_config(
        use_cases={"coding": UseCaseConfig("coding", matches="rust|python")},
        budgets=(Budget("global", None, daily=5.0),),
        tests=(RoutingTest("hi", expect={"rule": "default"}),),
    )
    b = make_config(
        use_cases={
            "coding": UseCaseConfig("coding", matches="rust|go"),
            "chat": UseCaseConfig("chat"),
        },
        budgets=(Budget("global", None, daily=10.0), Budget("rule", "coding", monthly=50.0)),
        settings=Settings(debounce_ms=250),
        tests=(
            RoutingTest("hi", expect={"rule": "default"}),
            RoutingTest("fn main", use_case="coding", expect={"rule": "coding"}),
        ),
    )
    other = diff_configs(a, b).other
    assert "use case chat added" in other
    assert "use case coding: matches rust|python -> rust|go" in other
    assert "budget global: daily 5.0 -> 10.0" in other
    assert "budget rule coding added" in other
    assert "settings: debounce_ms 100 -> 250" in other
    assert "routing tests changed (1 -> 2)" in other
    # Only where a test was written moved: no change.
    c = dataclasses.replace(
        a, tests=(RoutingTest("hi", expect={"rule": "default"}, where=Where("f", 9)),)
    )
    assert diff_configs(a, c).is_empty


def test_first_load_is_all_added() -> None:
    cfg = make_config()
    changes = diff_configs(None, cfg)
    assert changes.rules_added == ("coding", "default")
    assert set(changes.models_added) == {"gpt-4o", "gpt-4o-mini", "qwen-coder"}
    assert set(changes.providers_added) == {"openai", "local"}


def test_changes_are_frozen() -> None:
    a = make_config()
    changes = diff_configs(a, replace_rule(a, "coding", targets=("gpt-4o",)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        changes.rules_added = ("x",)  # type: ignore[misc]
    with pytest.raises(TypeError):
        changes.rules_changed["x"] = ()  # type: ignore[index]


def test_reload_event_describe() -> None:
    ok = ReloadEvent(
        version=3,
        ok=True,
        changes=ConfigChanges(rules_added=("long-docs",)),
        error=None,
        loaded_at=1.0,
        sha256="ab" * 32,
    )
    assert ok.describe() == ["reloaded: version 3 (abababababab)", "rule long-docs added"]
    same = dataclasses.replace(ok, changes=ConfigChanges())
    assert same.describe()[1] == "no routing changes"
    bad = ReloadEvent(
        3, False, None, "rules.yaml:7: rules[0].targets: unknown model", 2.0, "ab" * 32
    )
    assert bad.describe() == [
        "reload failed, still serving version 3: rules.yaml:7: rules[0].targets: unknown model"
    ]
    with pytest.raises(dataclasses.FrozenInstanceError):
        bad.ok = True  # type: ignore[misc]

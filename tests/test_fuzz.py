"""Property: whatever config and request, only ConfigError or RouterError come out.

Hypothesis generates configs (sections with odd values, conditions, templates drawn
from fragments that break in every way we know) and requests (prompts, tags,
metadata that shadows template names, odd params), writes the config to a real file,
loads it, builds a Router and routes. Bounded: a fixed number of examples, a
deadline per example, no database example store.
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router import Router
from router.config import load_config
from router.errors import ConfigError, RouterError

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["${UNSET}", "${A:-1}", "0", "-1", "1e308", ".inf", "ordered", "m0", "echo"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
FRAGMENTS = [
    "{{ prompt }}",
    "{{ n + 1 }}",
    "{{ tags[7] }}",
    "{{ 1 / 0 }}",
    "{{ range(3)|list }}",
    "{{ prompt * 3 }}",
    "{{ prompt|replace('a', 'bb') }}",
    "{% for c in prompt %}{{ c }}{% endfor %}",
    "{{ '%d' % prompt }}",
    "{{ 10 ** 400 }}",
    "{{ x.y.z }}",
    "{{ use_case|upper }}",
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{{ (2 ** 60) * (2 ** 60) }}",
    "{{ '{:>5}'.format(prompt) }}",
    "{{ prompt[100] }}",
    "{% if n is odd %}odd{% endif %}",
    "{{ tags|join(', ') }}",
    "{{",
    "{% include 'x' %}",
    "plain text",
]
TEMPLATES = st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=3).map("".join)
PATTERNS = st.sampled_from(
    [r"(?i)\bcode\b", r"^(\w+\s?)*$", r"(a)\1", r"[", r"x(?=y)", r"\d+", "", r"(?P<n>a)"]
)
CONDITIONS = st.one_of(
    st.fixed_dictionaries({"use_case": st.sampled_from(["coding", "chat", ["a", "b"], 3])}),
    st.fixed_dictionaries({"matches": PATTERNS}),
    st.fixed_dictionaries({"tokens": st.dictionaries(st.sampled_from(["gt", "lt", "eq"]), VALUES)}),
    st.fixed_dictionaries({"metadata": st.dictionaries(st.text(max_size=4), SCALARS, max_size=2)}),
    st.fixed_dictionaries({"contains": st.lists(st.text(max_size=5), max_size=3)}),
    VALUES,
)


MODEL_KEYS = {
    "context": st.integers(1, 10**6),
    "cost": st.fixed_dictionaries({"input": st.floats(0, 100), "output": st.floats(0, 100)}),
    "weight": st.floats(0.1, 10),
    "max_output": st.integers(1, 10_000),
    "rpm": st.integers(1, 1000),
    "capabilities": st.lists(st.sampled_from(["tools", "vision", "json"]), max_size=2),
}
RULE_KEYS = {
    "strategy": st.sampled_from(["ordered", "cheapest", "fastest", "round_robin", "weighted"]),
    "max_cost": st.floats(0, 1),
    "deadline": st.floats(0.1, 5),
    "retries": st.integers(0, 2),
    "params": st.fixed_dictionaries({"temperature": st.floats(0, 2)}),
    "on_budget": st.sampled_from(["fallback", "error"]),
}


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid configs (so requests get routed), with one odd value now and then."""
    models: dict[str, Any] = {}
    for i in range(draw(st.integers(1, 3))):
        model: dict[str, Any] = {"provider": draw(st.sampled_from(["echo", "echo", "slow"]))}
        for key, valid in MODEL_KEYS.items():
            if draw(st.integers(0, 2)) == 0:
                model[key] = draw(valid)
        models[f"m{i}"] = model
    rules = []
    n_rules = draw(st.integers(1, 3))
    for i in range(n_rules):
        rule: dict[str, Any] = {
            "name": f"r{i}",
            "targets": draw(st.lists(st.sampled_from(list(models)), min_size=1, unique=True)),
        }
        if i < n_rules - 1:
            rule["when"] = draw(CONDITIONS)
        for key in ("prompt", "system"):
            if draw(st.booleans()):
                rule[key] = draw(TEMPLATES)
        for key, valid in RULE_KEYS.items():
            if draw(st.integers(0, 3)) == 0:
                rule[key] = draw(valid)
        rules.append(rule)
    config: dict[str, Any] = {
        "providers": {
            "echo": {"type": "mock"},
            "slow": {
                "type": "mock",
                "fail": draw(st.sampled_from(["timeout", "rate_limited"])),
            },
        },
        "models": models,
        "rules": rules,
        "settings": {"usage_db": ":memory:"},
    }
    if draw(st.integers(0, 3)) == 0:
        config["budgets"] = {"global": {"daily": draw(st.floats(0, 10))}}
    if draw(st.integers(0, 3)) == 0:
        config["use_cases"] = {"coding": {"matches": draw(PATTERNS)}}
    if draw(st.integers(0, 3)) == 0:  # one odd value somewhere
        where = draw(st.sampled_from([*models.values(), *rules, config["settings"]]))
        key = draw(st.sampled_from([*MODEL_KEYS, *RULE_KEYS, "deadline", "debounce_ms", "x"]))
        where[key] = draw(VALUES)
    return config


REQUESTS = st.fixed_dictionaries(
    {
        "prompt": st.one_of(st.text(max_size=40), st.just("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!")),
        "use_case": st.one_of(st.none(), st.sampled_from(["coding", "chat"]), st.text(max_size=5)),
        "tags": st.lists(st.text(max_size=4), max_size=3),
        "metadata": st.dictionaries(
            st.sampled_from(["n", "range", "prompt", "x", "tags", "k"]), VALUES, max_size=3
        ),
    },
    optional={
        "temperature": VALUES,
        "max_tokens": st.one_of(st.integers(-5, 10**12), VALUES),
        "response_format": VALUES,
        "tools": VALUES,
    },
)


@pytest.mark.slow
@settings(
    max_examples=120,
    deadline=timedelta(seconds=10),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(config=configs(), requests=st.lists(REQUESTS, min_size=1, max_size=3))
def test_only_router_errors_come_out(
    tmp_path: Path, config: dict[str, Any], requests: list[dict[str, Any]]
) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    try:
        loaded = load_config(path, environ={"A": "1"})
        router = Router(loaded)
    except ConfigError as exc:
        assert exc.issues and all(i.message for i in exc.issues)
        return
    with router:
        for request in requests:
            for call in (router.explain, router.route):
                try:
                    result = call(**request)
                except RouterError as exc:
                    assert str(exc)
                    continue
                if call is router.route:
                    assert isinstance(result.text, str)
                    assert math.isfinite(result.cost_usd)

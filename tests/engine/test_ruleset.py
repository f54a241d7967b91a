"""`RuleSet.build`: every rule compiled and checked once, errors at their line."""

from __future__ import annotations

from dataclasses import replace

import pytest

from router.config.model import ProviderConfig, Where
from router.engine import RuleSet
from router.errors import ConfigError
from router.types import RejectionKind
from tests.engine.builders import model, rule


def test_bad_templates_and_conditions_are_reported_together_at_their_lines(make_config):
    bad_template = replace(
        rule("a", ["m"], system="{{ unclosed"), where=Where("r.yaml", 7, "rules[0]")
    )
    bad_condition = replace(
        rule("b", ["m"], when={"no_such_key": 1}), where=Where("r.yaml", 12, "rules[1]")
    )
    cfg = make_config([bad_template, bad_condition, rule("c", ["m"])], models=[model("m")])
    with pytest.raises(ConfigError) as info:
        RuleSet.build(cfg)
    issues = info.value.issues
    assert [(i.file, i.line, i.pointer) for i in issues] == [
        ("r.yaml", 7, "rules[0].system"),
        ("r.yaml", 12, "rules[1].when"),
    ]
    assert issues[0].message.startswith("bad template:")
    assert "unknown condition 'no_such_key'" in issues[1].message
    assert str(info.value).startswith("r.yaml:7: rules[0].system: bad template:")


def test_a_good_config_compiles_once_with_typed_disabled_targets(make_config):
    cfg = make_config(
        [rule("r", ["cloud", "m"])],
        models=[model("cloud", provider="off"), model("m")],
        providers=[
            ProviderConfig("off", "litellm", disabled_reason="KEY is not set"),
            ProviderConfig("echo", "mock"),
        ],
    )
    rs = RuleSet.build(cfg)
    cloud = rs.by_name["r"].targets[0]
    assert cloud.disabled is not None and cloud.disabled.kind is RejectionKind.DISABLED
    assert rs.configs["r"] is cfg.rules[0]


def test_a_use_case_regex_that_does_not_compile_is_a_config_error(make_config):
    from router.config.model import UseCaseConfig

    bad = UseCaseConfig("coding", matches="(?P<x", where=Where("u.yaml", 3, "use_cases.coding"))
    cfg = make_config([rule("r", ["a"])], use_cases=[bad])
    with pytest.raises(ConfigError) as info:
        RuleSet.build(cfg)
    issue = info.value.issues[0]
    assert (issue.file, issue.line, issue.pointer) == ("u.yaml", 3, "use_cases.coding.matches")
    assert issue.message.startswith("invalid regular expression:")

"""Every problem is reported with file, line and key path, and all of them at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import load_config
from router.errors import ConfigError, RouterError
from tests.config.conftest import BASE, Write, issue_at, issues_of

# BASE takes lines 1-5; the rules below start at line 6.


def check(write: Write, body: str, pointer: str, line: int, message: str) -> None:
    path = write(BASE.strip("\n") + "\n" + body.strip("\n") + "\n")
    issue = issue_at(issues_of(path), pointer)
    assert (issue.file, issue.line) == (str(path), line), str(issue)
    assert message in issue.message, issue.message


# --- semantic checks ------------------------------------------------------------------


def test_unknown_model_in_targets(write: Write) -> None:
    check(
        write,
        """
rules:
  - name: coding
    when: {use_case: coding}
    targets:
      - large
      - smal
  - name: default
    targets: [gpt4]
""",
        "rules[0].targets[1]",
        11,
        "unknown model 'smal' (did you mean 'small'?)",
    )


def test_error_text_reads_file_line_pointer_message(write: Write, tmp_path: Path) -> None:
    path = write(BASE + "rules:\n  - {name: default, targets: [gpt4]}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value) == f"{path}:7: rules[0].targets[0]: unknown model 'gpt4'"
    assert isinstance(info.value, RouterError)
    assert (info.value.file, info.value.line, info.value.column) == (str(path), 7, 31)
    assert info.value.pointer == "rules[0].targets[0]"


def test_unknown_provider_in_model(write: Write) -> None:
    check(
        write,
        """
  other:
    provider: ech
rules: [{name: default, targets: [other]}]
""",
        "models.other.provider",
        7,
        "unknown provider 'ech' (did you mean 'echo'?)",
    )


def test_duplicate_rule_in_one_file(write: Write) -> None:
    check(
        write,
        """
rules:
  - {name: a, when: {use_case: x}, targets: [small]}
  - {name: b, when: {use_case: y}, targets: [small]}
  - {name: a, targets: [small]}
""",
        "rules[2].name",
        9,
        "duplicate rule 'a' (first defined at line 7)",
    )


def test_duplicate_key_in_one_mapping(write: Write) -> None:
    check(
        write,
        """
  small: {provider: echo}
rules: [{name: default, targets: [small]}]
""",
        "models.small",
        6,
        "duplicate model 'small' (first defined at line 4)",
    )
    path = write("rules:\n  - name: x\n    targets: [a]\n    name: y\n", "dup.yaml")
    issue = issue_at(issues_of(path), "rules[0].name")
    assert issue.line == 4 and issue.message == "duplicate key 'name' (first defined at line 2)"


def test_rule_after_a_catch_all(write: Write) -> None:
    check(
        write,
        """
rules:
  - name: default
    targets: [small]
  - name: never
    when: {use_case: coding}
    targets: [large]
""",
        "rules[1]",
        9,
        "rule 'never' can never match: rule 'default' (line 7) has no `when`",
    )


def test_fallback_to_unknown_rule_and_to_itself(write: Write) -> None:
    path = write(
        BASE
        + """rules:
  - {name: a, when: {use_case: x}, targets: [small], fallback: defualt}
  - {name: b, when: {use_case: y}, targets: [small], fallback: b}
  - {name: default, targets: [small]}
"""
    )
    issues = issues_of(path)
    assert issue_at(issues, "rules[0].fallback").line == 7
    assert issue_at(issues, "rules[0].fallback").message == (
        "unknown rule 'defualt' (did you mean 'default'?)"
    )
    assert issue_at(issues, "rules[1].fallback").message == "a rule cannot fall back to itself"


def test_fallback_cycle(write: Write) -> None:
    check(
        write,
        """
rules:
  - {name: a, when: {use_case: x}, targets: [small], fallback: b}
  - {name: b, when: {use_case: y}, targets: [small], fallback: a}
  - {name: default, targets: [small]}
""",
        "rules[0].fallback",
        7,
        "fallbacks go round in a circle: a -> b -> a",
    )


def test_weights_name_a_model_not_in_targets(write: Write) -> None:
    check(
        write,
        """
rules:
  - name: default
    targets: [small]
    strategy: weighted
    weights:
      small: 2
      large: 1
""",
        "rules[0].weights.large",
        12,
        "'large' is not one of this rule's targets",
    )


def test_model_listed_twice_in_targets(write: Write) -> None:
    check(
        write,
        "rules: [{name: default, targets: [small, large, small]}]",
        "rules[0].targets[2]",
        6,
        "model 'small' is listed twice",
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("model", "huge", "expects an unknown model 'huge'"),
        ("rule", "defualt", "expects an unknown rule 'defualt' (did you mean 'default'?)"),
        ("provider", "openai", "expects an unknown provider 'openai'"),
    ],
)
def test_routing_test_expects_unknown_names(
    write: Write, field: str, value: str, message: str
) -> None:
    check(
        write,
        f"""
rules: [{{name: default, targets: [small]}}]
tests:
  - prompt: hello
    expect:
      {field}: {value}
""",
        f"tests[0].expect.{field}",
        10,
        message,
    )


def test_budgets_name_unknown_rules_and_models(write: Write) -> None:
    path = write(
        BASE
        + """rules: [{name: default, targets: [small]}]
budgets:
  - {scope: rule, name: defualt, daily: 1}
  - {scope: model, name: tiny, daily: 1}
  - {scope: global, name: x, daily: 1}
  - {scope: model, daily: 1}
  - {scope: global}
  - {scope: global, monthly: 3}
"""
    )
    issues = issues_of(path)
    assert issue_at(issues, "budgets[0].name").line == 8
    assert "unknown rule 'defualt'" in issue_at(issues, "budgets[0].name").message
    assert issue_at(issues, "budgets[1].name").message == "unknown model 'tiny'"
    assert issue_at(issues, "budgets[2].name").message == "a global budget takes no name"
    assert issue_at(issues, "budgets[3]").message == "a model budget needs the model's `name`"
    assert issue_at(issues, "budgets[4]").line == 12
    assert "needs `daily` or `monthly`" in issue_at(issues, "budgets[4]").message
    assert "duplicate budget (first at line 12)" in issue_at(issues, "budgets[5]").message


def test_budget_mapping_form_unknown_names(write: Write) -> None:
    check(
        write,
        """
rules: [{name: default, targets: [small]}]
budgets:
  models:
    smal: {daily: 1}
""",
        "budgets.models.smal",
        9,
        "unknown model 'smal' (did you mean 'small'?)",
    )


def test_invalid_regex_in_when_and_use_case(write: Write) -> None:
    path = write(
        BASE
        + """rules:
  - name: a
    when:
      any:
        - {tokens: {gt: 5}}
        - matches: "([a-z"
    targets: [small]
  - {name: default, targets: [small]}
use_cases:
  coding: {matches: '(?P<x'}
"""
    )
    issues = issues_of(path)
    bad = issue_at(issues, "rules[0].when.any[1].matches")
    assert bad.line == 11 and bad.message.startswith("invalid regular expression:")
    assert "position 1" in bad.message
    assert issue_at(issues, "use_cases.coding.matches").line == 15


def test_use_case_needs_a_detector(write: Write) -> None:
    check(
        write,
        """
rules: [{name: default, targets: [small]}]
use_cases:
  chat: {}
""",
        "use_cases.chat",
        8,
        "a use case needs `matches`",
    )


def test_no_rules(write: Write) -> None:
    path = write(BASE)
    issue = issue_at(issues_of(path), "rules")
    assert issue.file == str(path) and "no rules" in issue.message


# --- schema errors --------------------------------------------------------------------


def test_unknown_top_level_section(write: Write) -> None:
    check(
        write,
        "rules: [{name: default, targets: [small]}]\nrulez: []",
        "rulez",
        7,
        "unknown section 'rulez' (did you mean 'rules'?)",
    )
    path = write(BASE + "rules: [{name: d, targets: [small]}]\nfoo: 1\n", "other.yaml")
    assert "sections are: providers, models, rules" in issue_at(issues_of(path), "foo").message


def test_x_keys_are_allowed_for_anchors(write: Write) -> None:
    path = write(BASE + "x-anything: {a: 1}\nrules: [{name: default, targets: [small]}]\n")
    assert [r.name for r in load_config(path, environ={}).rules] == ["default"]


def test_unknown_condition_key(write: Write) -> None:
    check(
        write,
        """
rules:
  - name: a
    when:
      use_case: coding
      token: {gt: 5}
    targets: [small]
""",
        "rules[0].when.token",
        10,
        "unknown condition 'token' (did you mean 'tokens'?)",
    )


def test_unknown_condition_key_nested_in_not(write: Write) -> None:
    check(
        write,
        "rules:\n  - {name: a, when: {not: {tagz: [x]}}, targets: [small]}",
        "rules[0].when.not.tagz",
        7,
        "unknown condition 'tagz' (did you mean 'tags'?)",
    )


def test_bad_tokens_bound(write: Write) -> None:
    path = write(
        BASE
        + "rules:\n  - name: a\n    when: {tokens: {more: 5, gt: lots}}\n    targets: [small]\n"
    )
    issues = issues_of(path)
    assert issue_at(issues, "rules[0].when.tokens.more").line == 8
    assert issue_at(issues, "rules[0].when.tokens.gt").message == "expected a number, got a string"


def test_unknown_rule_key(write: Write) -> None:
    check(
        write,
        "rules:\n  - name: a\n    targets: [small]\n    stratgy: cheapest",
        "rules[0].stratgy",
        9,
        "unknown key 'stratgy' (did you mean 'strategy'?)",
    )


def test_enum_errors_name_the_choices(write: Write) -> None:
    check(
        write,
        "rules:\n  - name: a\n    targets: [small]\n    strategy: cheapst",
        "rules[0].strategy",
        9,
        "must be one of: ordered, cheapest, fastest, round_robin, weighted, least_busy "
        "(got 'cheapst') (did you mean 'cheapest'?)",
    )


def test_missing_required_keys_point_at_the_item(write: Write) -> None:
    path = write(
        BASE
        + """rules:
  - name: default
    targets: [small]
  - when: {use_case: x}
    strategy: ordered
"""
    )
    issues = issues_of(path)
    missing = [i for i in issues if i.pointer == "rules[1]" and "missing" in i.message]
    assert [(i.line, i.message) for i in missing] == [
        (9, "missing required key 'name'"),
        (9, "missing required key 'targets'"),
    ]


def test_type_errors(write: Write) -> None:
    path = write(
        """
providers:
  echo: {type: mock, timeout: soon, retries: 1.5}
models:
  small: {provider: echo, context: 0, capabilities: tools}
  big: {provider: echo, cost: {input: -1}}
rules:
  - name: default
    targets:
    max_cost: free
settings: {default_max_tokens: many}
"""
    )
    issues = issues_of(path)
    expected = {
        "providers.echo.timeout": (2, "expected a number, got a string"),
        "providers.echo.retries": (2, "expected a whole number, got the number 1.5"),
        "models.small.context": (4, "must be at least 1"),
        "models.small.capabilities": (4, "expected a list, got a string"),
        "models.big.cost.input": (5, "must be at least 0"),
        "rules[0].targets": (8, "expected a list, got an empty value"),
        "rules[0].max_cost": (9, "expected a number, got a string"),
        "settings.default_max_tokens": (10, "expected a whole number, got a string"),
    }
    for pointer, (line, message) in expected.items():
        issue = issue_at(issues, pointer)
        assert (issue.line, issue.message) == (line, message)


def test_empty_targets_and_provider_type(write: Write) -> None:
    path = write(
        "providers:\n  p: {type: anthropic}\n  q: {timeout: 3}\n"
        "models: {m: {provider: p}}\nrules: [{name: d, targets: []}]\n"
    )
    issues = issues_of(path)
    assert "must be one of: openai, litellm, llama_cpp, mock (got 'anthropic')" in (
        issue_at(issues, "providers.p.type").message
    )
    assert issue_at(issues, "providers.q").message == "missing required key 'type'"
    assert issue_at(issues, "rules[0].targets").message == "must not be empty"


# --- YAML itself ----------------------------------------------------------------------


def test_invalid_yaml_names_the_line(write: Write) -> None:
    path = write("providers:\n  echo: {type: mock}\nmodels:\n  small: [provider: echo\nrules: []\n")
    (issue,) = issues_of(path)
    assert issue.file == str(path) and issue.line == 5
    assert issue.message.startswith("invalid YAML: ")


def test_bad_indentation(write: Write) -> None:
    path = write("rules:\n  - name: a\n   targets: [x]\n")
    (issue,) = issues_of(path)
    assert issue.line == 3 and issue.message.startswith("invalid YAML")


def test_tab_indentation(write: Write) -> None:
    path = write("rules:\n\t- name: a\n")
    (issue,) = issues_of(path)
    assert issue.line == 2 and "invalid YAML" in issue.message


def test_two_documents(write: Write) -> None:
    path = write("rules: []\n---\nrules: []\n")
    (issue,) = issues_of(path)
    assert issue.line == 2 and "single document" in issue.message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"rules:\n  - name: caf\xe9\n")
    (issue,) = issues_of(path)
    assert issue.line == 2 and issue.message == "the file is not UTF-8 text"


def test_top_level_must_be_a_mapping(write: Write) -> None:
    path = write("- name: default\n  targets: [small]\n")
    issues = issues_of(path)
    assert issues[0].line == 1 and "top level must be a mapping" in issues[0].message


def test_empty_file_is_an_empty_config(write: Write) -> None:
    path = write("# nothing here yet\n")
    (issue,) = issues_of(path)  # the file is fine; a config needs rules somewhere
    assert issue.message.startswith("the config has no rules") and issue.line is None


def test_custom_tags_are_refused(write: Write) -> None:
    check(
        write,
        "rules:\n  - name: !env NAME\n    targets: [small]",
        "rules[0].name",
        7,
        "unsupported YAML tag !env",
    )


def test_recursive_alias(write: Write) -> None:
    path = write("rules: []\nx-loop: &loop [1, *loop]\n")
    [issue] = issues_of(path)
    assert "alias *loop is inside its own anchor" in issue.message
    assert (issue.line, issue.column) == (2, 19)  # the alias, not the file's first line


# --- all at once ----------------------------------------------------------------------


def test_every_problem_is_reported_at_once_in_line_order(write: Write) -> None:
    path = write(
        """
providers:
  openai: {type: litelm, api_key: "${OPENAI_API_KEY}"}
models:
  small: {provider: openai}
  big: {provider: lcoal}
rules:
  - name: coding
    when: {use_case: coding, tokenz: {gt: 5}}
    targets: [small, gpt4]
    strategy: cheapst
  - name: default
    targets: [small]
  - name: late
    when: {use_case: chat}
    targets: [big]
tests:
  - {prompt: hi, expect: {model: huge}}
rulez: []
"""
    )
    issues = issues_of(path)
    assert [(i.line, i.pointer) for i in issues] == [
        (2, "providers.openai.type"),
        (5, "models.big.provider"),
        (8, "rules[0].when.tokenz"),
        (9, "rules[0].targets[1]"),
        (10, "rules[0].strategy"),
        (13, "rules[2]"),
        (17, "tests[0].expect.model"),
        (18, "rulez"),
    ]
    assert all(i.file == str(path) for i in issues)
    text = str(ConfigError(issues))
    assert text.count("\n") == len(issues) - 1


def test_control_character(write: Write) -> None:
    path = write("rules:\n  - name: a\x07b\n")
    (issue,) = issues_of(path)
    assert issue.line == 2 and issue.message.startswith("invalid YAML")


def test_keys_with_dots_are_quoted_in_pointers(write: Write) -> None:
    path = write(
        "providers: {p: {type: mock}}\nmodels:\n  llama3.1: {provider: q}\n"
        "rules: [{name: d, targets: [llama3.1, qwen2.5]}]\n"
    )
    issues = issues_of(path)
    assert issue_at(issues, 'models["llama3.1"].provider').line == 3
    assert issue_at(issues, "rules[0].targets[1]").message == "unknown model 'qwen2.5'"

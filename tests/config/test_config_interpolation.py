"""`${VAR}`, `${VAR:-default}` and `$${` in config strings."""

from __future__ import annotations

import pytest

from router.config import load_config
from router.config.interpolate import interpolate
from tests.config.conftest import Write, issue_at, issues_of


@pytest.mark.parametrize(
    ("text", "env", "value"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("pre-${A}-post", {"A": "x"}, "pre-x-post"),
        ("${A}${B}", {"A": "1", "B": "2"}, "12"),
        ("${A:-fallback}", {}, "fallback"),
        ("${A:-fallback}", {"A": ""}, "fallback"),  # as in sh: empty counts as unset
        ("${A:-fallback}", {"A": "set"}, "set"),
        ("${A:-}", {}, ""),  # an empty default
        ("${A:-~/models}", {}, "~/models"),  # `~` is not expanded here
        ("${A:-a:-b}", {}, "a:-b"),
        ("${PRICE:-$5}", {}, "$5"),  # a lone $ in a default is text too
        ("${RE:-^a$}|${RE:-b$}", {}, "^a$|b$"),
        ("${A}", {"A": ""}, ""),  # set but empty is set
        ("$${A}", {"A": "x"}, "${A}"),  # escaped
        ("cost $5 and ^foo$", {}, "cost $5 and ^foo$"),  # a lone $ is text
        ("$${A} and ${A}", {"A": "x"}, "${A} and x"),
    ],
)
def test_interpolate(text: str, env: dict[str, str], value: str) -> None:
    done = interpolate(text, env)
    assert (done.value, done.missing, done.errors) == (value, [], [])


def test_unset_variables_are_listed_in_order() -> None:
    done = interpolate("${B} ${A} ${B:-ok}", {})
    assert done.missing == ["B", "A"]


@pytest.mark.parametrize(
    "text", ["${1A}", "${A", "${A:-${B}}", "${A:-$${B}}", "${}", "${A B}", "${A $B}"]
)
def test_malformed_reference_is_an_error(text: str) -> None:
    done = interpolate(text, {"A": "x", "B": "y"})
    assert len(done.errors) == 1 and "bad variable reference" in done.errors[0]


PROVIDERS = """
providers:
  openai:
    type: litellm
    api_base: "${OPENAI_BASE}"
    api_key: "${OPENAI_API_KEY}"
    timeout: 30
  echo: {type: mock}
models:
  small: {provider: echo}
  big: {provider: openai}
rules:
  - {name: default, targets: [small, big]}
"""


def test_unset_variable_disables_the_provider(write: Write) -> None:
    config = load_config(write(PROVIDERS), environ={})
    openai = config.providers["openai"]
    assert openai.disabled_reason == "OPENAI_BASE is not set"  # the first one missing
    assert not openai.enabled
    assert openai.api_key is None and openai.api_base is None  # fields left unset
    assert openai.timeout == 30.0
    assert config.providers["echo"].enabled


def test_set_variables_enable_the_provider(write: Write) -> None:
    env = {"OPENAI_BASE": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-abcdefghijk"}
    openai = load_config(write(PROVIDERS), environ=env).providers["openai"]
    assert openai.enabled
    assert openai.api_base == "http://127.0.0.1:9/v1"
    assert openai.api_key is not None and openai.api_key.reveal() == "sk-abcdefghijk"


def test_disabled_in_config_wins_over_an_unset_variable(write: Write) -> None:
    path = write(
        """
        providers:
          openai: {type: litellm, api_key: "${OPENAI_API_KEY}", enabled: false}
        models: {m: {provider: openai}}
        rules: [{name: default, targets: [m]}]
        """
    )
    assert load_config(path, environ={}).providers["openai"].disabled_reason == (
        "disabled in config"
    )


def test_environ_defaults_to_os_environ(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_TEST_BASE", "http://from-os-environ")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-os-environ-1")
    path = write(PROVIDERS.replace("${OPENAI_BASE}", "${ROUTER_TEST_BASE}"))
    openai = load_config(path).providers["openai"]
    assert openai.enabled and openai.api_base == "http://from-os-environ"


def test_unset_variable_outside_providers_is_an_error_at_its_line(write: Write) -> None:
    path = write(
        """
        providers: {echo: {type: mock}}
        models:
          small:
            provider: echo
            model: "${SMALL_MODEL}"
        rules:
          - name: default
            targets: [small]
            system: "Team ${TEAM} says ${GREETING:-hi}"
        """
    )
    issues = issues_of(path)
    assert [(i.line, i.pointer) for i in issues] == [
        (5, "models.small.model"),
        (9, "rules[0].system"),
    ]
    assert issue_at(issues, "models.small.model").message.startswith(
        "environment variable SMALL_MODEL is not set"
    )
    assert "TEAM is not set" in issue_at(issues, "rules[0].system").message
    assert issues[0].file == str(path) and issues[0].column == 12


def test_unset_variable_in_a_rule_target_is_reported_once(write: Write) -> None:
    path = write(
        """
        providers: {echo: {type: mock}}
        models: {small: {provider: echo}}
        rules:
          - {name: default, targets: ["${MODEL}"]}
        """
    )
    issues = issues_of(path)
    # not also "unknown model '${MODEL}'"
    assert [(i.line, i.pointer, i.message.split(" (")[0]) for i in issues] == [
        (4, "rules[0].targets[0]", "environment variable MODEL is not set")
    ]


def test_escape_gives_a_literal(write: Write) -> None:
    path = write(
        """
        providers: {echo: {type: mock, reply: "$${NOT_A_VAR}"}}
        models: {small: {provider: echo}}
        rules:
          - {name: default, targets: [small], system: "cost: $${PRICE} or ${PRICE:-}"}
        """
    )
    config = load_config(path, environ={"PRICE": "5", "NOT_A_VAR": "no"})
    assert config.providers["echo"].settings["reply"] == "${NOT_A_VAR}"
    assert config.rules[0].system == "cost: ${PRICE} or 5"


def test_malformed_reference_is_reported_at_its_line(write: Write) -> None:
    path = write(
        """
        providers: {echo: {type: mock}}
        models: {small: {provider: echo}}
        rules:
          - name: default
            targets: [small]
            system: "hello ${1BAD}"
        """
    )
    issue = issue_at(issues_of(path), "rules[0].system")
    assert issue.line == 6 and "bad variable reference '${1BAD'" in issue.message


def test_keys_are_not_interpolated(write: Write) -> None:
    path = write(
        """
        providers: {echo: {type: mock}}
        models: {"${X}": {provider: echo}}
        rules: [{name: default, targets: ["$${X}"]}]
        """
    )
    assert list(load_config(path, environ={"X": "y"}).models) == ["${X}"]

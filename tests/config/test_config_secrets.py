"""A key read from the environment never shows: not in a repr, a str, nor any error."""

from __future__ import annotations

import pickle

import pytest

from router.config import load_config
from router.errors import ConfigError
from tests.config.conftest import Write

CANARY = "sk-canary-1234567890"
TOKEN = "canarytoken-0987654321"
ENV = {"OPENAI_API_KEY": CANARY, "TEAM_TOKEN": TOKEN}

GOOD = """
providers:
  openai:
    type: litellm
    api_key: "${OPENAI_API_KEY}"
    headers: {Authorization: "Bearer ${TEAM_TOKEN}", X-Api-Key: "${TEAM_TOKEN}"}
models:
  gpt:
    provider: openai
    headers: {X-Api-Key: "${TEAM_TOKEN}"}
rules: [{name: default, targets: [gpt]}]
"""


def assert_hidden(text: str) -> None:
    assert CANARY not in text and TOKEN not in text
    assert "canary" not in text  # not even a part of one


def test_config_and_provider_never_show_the_key(write: Write) -> None:
    config = load_config(write(GOOD), environ=ENV)
    openai = config.providers["openai"]
    assert openai.api_key is not None and openai.api_key.reveal() == CANARY
    for thing in (config, openai, openai.api_key, config.models["gpt"], openai.settings):
        assert_hidden(repr(thing))
        assert_hidden(str(thing))
        assert_hidden(f"{thing}")
    assert_hidden(repr(pickle.loads(pickle.dumps(openai.api_key))))
    # the adapter can still read what it must send
    assert str(openai.settings["headers"]["Authorization"]) == f"Bearer {TOKEN}"
    assert str(config.models["gpt"].settings["headers"]["X-Api-Key"]) == TOKEN
    assert openai.settings["headers"]["X-Api-Key"] == TOKEN


@pytest.mark.parametrize(
    "bad",
    [
        # errors in the provider that holds the key
        'providers:\n  openai: {type: litellm, api_key: "${OPENAI_API_KEY}", timeout: x}\n',
        # the key's value lands where an error would quote it
        'providers:\n  openai: {type: "${OPENAI_API_KEY}", api_key: "${OPENAI_API_KEY}"}\n',
        "providers:\n  openai: {type: litellm, api_key: 12345}\n"
        'models:\n  m: {provider: "${OPENAI_API_KEY}"}\n',
        'rules:\n  - {name: x, targets: ["${OPENAI_API_KEY}"], strategy: "${TEAM_TOKEN}"}\n',
        "providers:\n  p: {type: mock}\nmodels:\n  m: {provider: p}\n"
        'rules: [{name: x, targets: [m], fallback: "${OPENAI_API_KEY}"}]\n',
        'providers:\n  openai: {type: litellm, api_key: "${OPENAI_API_KEY}", headers: [1]}\n'
        "oops: [",
        'settings: {usage_db: "${OPENAI_API_KEY}", debounce_ms: "${OPENAI_API_KEY}"}\n',
    ],
)
def test_errors_never_show_the_key(write: Write, bad: str) -> None:
    path = write(bad)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=ENV)
    error = info.value
    assert error.issues
    assert_hidden(str(error))
    assert_hidden(repr(error))
    for issue in error.issues:
        assert_hidden(repr(issue))
        assert_hidden(str(issue))


def test_literal_key_in_the_file_is_masked_in_errors(write: Write) -> None:
    path = write(
        "providers:\n  openai: {type: litellm, api_key: plainsecretvalue123}\n"
        "models:\n  m: {provider: plainsecretvalue123}\n"
        "rules: [{name: d, targets: [m]}]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "plainsecretvalue123" not in str(info.value)
    assert info.value.issues[0].pointer == "models.m.provider"


def test_values_from_the_environment_show_as_their_reference(write: Write) -> None:
    path = write(
        "providers: {p: {type: mock}}\nmodels: {m: {provider: p}}\n"
        'rules:\n  - {name: x, targets: [m], strategy: "${TEAM_TOKEN}"}\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=ENV)
    (issue,) = info.value.issues
    assert issue.pointer == "rules[0].strategy" and issue.line == 4
    assert "(got '${TEAM_TOKEN}')" in issue.message


def test_a_numeric_key_is_masked_in_errors(write: Write) -> None:
    # Unquoted digits read as a number; the type error would quote it.
    path = write(
        "x-creds: &creds {api_key: 24681357902468}\n"
        "providers:\n"
        "  p: {type: litellm, api_key: 98765432101234, headers: {Authorization: 1.5e+20}}\n"
        "  q: {type: litellm, <<: *creds}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    text = str(info.value) + repr(info.value.issues)
    for value in ("98765432101234", "24681357902468", "1.5e+20", "1.5e20"):
        assert value not in text
    got = {i.pointer: i.message for i in info.value.issues}
    assert got["providers.p.api_key"] == "expected a string, got the number ****"
    assert got["providers.p.headers.Authorization"] == "expected a string, got the number ****"
    assert got["providers.q.api_key"] == "expected a string, got the number ****"


def test_a_bad_reference_in_a_key_does_not_quote_the_key(write: Write) -> None:
    # A password may hold `${`: the error must not show what follows it.
    path = write('providers:\n  p: {type: litellm, password: "x9${Qw7!zz-part"}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    (issue,) = [i for i in info.value.issues if i.pointer == "providers.p.password"]
    assert issue.line == 2
    assert issue.message.startswith("bad variable reference")
    assert "Qw7" not in str(info.value) and "part" not in str(info.value)

"""The `server:` section: API keys for `router serve`, checked and never shown."""

from __future__ import annotations

from router.config import load_config
from tests.config.conftest import Write, issue_at, issues_of

KEY = "sk-router-canary-5555"

BASE = """
providers: {p: {type: mock}}
models: {m: {provider: p, model: x}, n: {provider: p, model: y}}
rules: [{name: default, targets: [m]}]
"""


def test_keys_limits_and_defaults_are_read(write: Write) -> None:
    path = write(
        BASE
        + """
server:
  max_body_bytes: 1000
  keys:
    - {key: "${ALICE}", name: alice, models: [m], rules: [default], rpm: 5,
       budget: {daily: 1.5, monthly: 20}}
    - {key: other-key-value, name: bob}
"""
    )
    cfg = load_config(path, environ={"ALICE": KEY})
    alice, bob = cfg.server.keys
    assert alice.key.reveal() == KEY and alice.name == "alice"
    assert alice.models == frozenset({"m"}) and alice.rules == frozenset({"default"})
    assert (alice.rpm, alice.daily, alice.monthly) == (5, 1.5, 20.0)
    assert bob.models is None and bob.rules is None and bob.rpm is None
    assert cfg.server.max_body_bytes == 1000
    assert cfg.server.max_concurrent == 256  # the default
    assert KEY not in repr(cfg) and KEY not in repr(alice)
    assert alice.where.line == 8


def test_no_server_section_means_no_keys(write: Write) -> None:
    cfg = load_config(write(BASE), environ={})
    assert cfg.server.keys == ()


def test_bad_keys_are_reported_where_written_without_the_key(write: Write) -> None:
    path = write(
        BASE
        + """
server:
  keys:
    - {key: "${ALICE}", name: alice, models: [gpt], rules: [nope]}
    - {key: "${ALICE}", name: alice}
    - {name: nokey}
    - {key: abc, name: z, rpm: 0, colour: blue}
"""
    )
    issues = issues_of(path, {"ALICE": KEY})
    text = "\n".join(str(i) for i in issues)
    assert KEY not in text
    assert "unknown model 'gpt'" in str(issue_at(issues, "server.keys[0].models[0]"))
    assert "unknown rule 'nope'" in str(issue_at(issues, "server.keys[0].rules[0]"))
    assert "used twice" in str(issue_at(issues, "server.keys[1].name"))
    assert "the same key as keys[0]" in str(issue_at(issues, "server.keys[1].key"))
    assert any(i.pointer.startswith("server.keys[2]") and "key" in i.message for i in issues)
    assert any(i.pointer.startswith("server.keys[3]") for i in issues)


def test_an_unset_key_variable_is_an_error_at_its_line(write: Write) -> None:
    path = write(BASE + "server:\n  keys:\n    - {key: '${MISSING_KEY}', name: a}\n")
    issues = issues_of(path, {})
    assert any("MISSING_KEY" in str(i) and i.line == 6 for i in issues), issues

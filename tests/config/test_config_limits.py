"""Hostile and careless files: alias bombs, huge files, special files. Each is a
ConfigError at a line, found before anything is built, never a hang or a MemoryError."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from router.config import load_config
from router.config.limits import ReadLimits, RefusedFile, read_regular
from router.errors import ConfigError
from tests.config.conftest import BASE, Write, issues_of

# Nine levels of ten aliases each: 10**9 nodes once expanded, about 600 bytes written.
BOMB = "\n".join(
    [
        "providers:",
        "  echo: {type: mock}",
        "models:",
        "  small: {provider: echo}",
        "rules:",
        "  - {name: all, targets: [small]}",
        "x-anchors:",
        '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(
            f"  l{i}: &l{i} [*l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1},"
            f" *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}, *l{i - 1}]"
            for i in range(1, 9)
        ),
        "  boom: *l8",
    ]
)


def test_alias_bomb_is_a_config_error_at_the_alias(write: Write) -> None:
    path = write(BOMB)
    assert len(BOMB) < 1000
    start = time.process_time()
    issues = issues_of(path)
    assert time.process_time() - start < 5  # a bound on work, not a speed claim
    [issue] = issues
    assert "aliases expand to more than 100,000 nodes" in issue.message
    # l4 holds 111,111 nodes: the alias that crosses the limit is on l4's line, the 12th
    assert issue.line == 12, issue
    assert issue.file == str(path)
    assert "*l3" in issue.message


def test_alias_limit_is_a_setting(write: Write) -> None:
    path = write(BOMB.split("\n  l4", 1)[0])  # up to l3: 12,330 nodes added by aliases
    assert load_config(path, environ={}).rules[0].name == "all"
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={}, limits=ReadLimits(max_alias_nodes=1000))
    assert "more than 1,000 nodes" in str(info.value)


def test_limits_read_from_the_environment(write: Write, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_MAX_ALIAS_NODES", "50")
    monkeypatch.setenv("ROUTER_MAX_CONFIG_BYTES", "oops")  # not a number: the default
    limits = ReadLimits.from_environ()
    assert limits.max_alias_nodes == 50
    assert limits.max_bytes == ReadLimits().max_bytes


def test_ordinary_aliases_and_merge_keys_still_load(write: Write) -> None:
    path = write(
        BASE
        + """
x-defaults: &defaults {targets: [small, large], strategy: ordered}
rules:
  - {name: a, when: {use_case: a}, <<: *defaults}
  - {name: b, <<: *defaults}
"""
    )
    config = load_config(path, environ={})
    assert [r.targets for r in config.rules] == [("small", "large"), ("small", "large")]


def test_a_file_over_the_size_limit_is_refused_before_parsing(write: Write) -> None:
    path = write(BASE + "rules: [{name: all, targets: [small]}]\n#" + "x" * 5000 + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={}, limits=ReadLimits(max_bytes=4096))
    [issue] = info.value.issues
    assert "larger than 4,096 bytes" in issue.message
    assert issue.file == str(path)
    load_config(path, environ={})  # under the default limit


def test_self_referencing_alias_is_reported_at_its_own_line(write: Write) -> None:
    path = write(BASE + "rules:\n  - {name: all, targets: [small]}\nloop: &me\n  - a\n  - *me\n")
    [issue] = issues_of(path)
    assert "alias *me is inside its own anchor" in issue.message
    assert issue.line == 10, issue


# -- special files: each load runs in a real child process, so a hang is a failure, not a
# -- stuck suite, and /dev/zero cannot take this process's memory with it.

_LOAD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from router.config import load_config
from router.errors import ConfigError
try:
    load_config(sys.argv[1], environ={})
except ConfigError as exc:
    print("ConfigError:", exc)
"""


def _load_in_child(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _LOAD, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done.stdout


def test_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "router.yaml"
    os.mkfifo(fifo)
    out = _load_in_child(fifo)
    assert f"ConfigError: {fifo}: not a regular file (a FIFO)" in out


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_link_to_a_device_is_refused(tmp_path: Path, device: str) -> None:
    link = tmp_path / "router.yaml"
    os.symlink(device, link)
    out = _load_in_child(link)
    assert f"ConfigError: {link}: not a regular file (a character device)" in out


def test_a_fifo_in_a_config_directory_is_not_read(tmp_path: Path, write: Write) -> None:
    write(BASE + "rules: [{name: all, targets: [small]}]\n", "10-base.yaml")
    os.mkfifo(tmp_path / "20-pipe.yaml")
    out = _load_in_child(tmp_path)
    assert out == ""  # loaded: the FIFO is not a config file


def test_reading_stops_at_the_limit_on_a_growing_file(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (1 << 20))
    with pytest.raises(RefusedFile, match="larger than 1,000 bytes"):
        read_regular(big, 1000)
    assert read_regular(big, 2 << 20).startswith(b"# xx")


# -- numbers: finite, and durations with sane maxima


@pytest.mark.parametrize(
    ("snippet", "pointer", "words"),
    [
        ("settings: {debounce_ms: 100000000000000000000000}", "settings.debounce_ms", "600000"),
        ("settings: {deadline: .inf}", "settings.deadline", "at most 86400"),
        ("models: {x: {provider: echo, cost: {input: .inf}}}", "models.x.cost.input", "1000000000"),
        ("budgets: {global: {daily: 1.0e+400}}", "budgets.global.daily", "at most 1000000000"),
        ("providers: {p: {type: mock, timeout: 1.0e+30}}", "providers.p.timeout", "86400"),
        (
            "models: {y: {provider: echo, breaker: {cooldown: .inf}}}",
            "models.y.breaker.cooldown",
            "",
        ),
    ],
)
def test_numbers_are_finite_and_durations_bounded(
    write: Write, snippet: str, pointer: str, words: str
) -> None:
    path = write(BASE + "rules: [{name: all, targets: [small]}]\n", "10-base.yaml")
    write(snippet + "\n", "20-odd.yaml")
    issues = issues_of(path.parent)
    found = [i for i in issues if i.pointer == pointer]
    assert found, [str(i) for i in issues]
    assert "must be at most" in found[0].message and words in found[0].message

"""`matches:` runs in linear time (RE2), or on the time-limited engine for patterns RE2
refuses. Catastrophic patterns and prompts are tried in real child processes, so a
regression hangs a child (and fails on its timeout), not the suite."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from router import Router
from router.config import load_config
from router.config.patterns import PatternError, PatternTimeout, compile_pattern
from router.errors import ConfigError, RouterError

ROOT = Path(__file__).resolve().parents[2]
EVIL = r"^(\w+\s?)*$"
PROMPT = "a" * 28 + "!"  # almost matches: exponential for a backtracking engine


def _config(tmp_path: Path, pattern: str, test_prompt: str = "hello") -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            providers: {{echo: {{type: mock}}}}
            models: {{a: {{provider: echo}}, b: {{provider: echo}}}}
            rules:
              - {{name: words, when: {{matches: '{pattern}'}}, targets: [a], deadline: 1}}
              - {{name: rest, targets: [b]}}
            tests:
              - {{prompt: "{test_prompt}", expect: {{rule: words}}}}
            """
        )
    )
    return path


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_the_catastrophic_pattern_is_linear_in_route_and_validate(tmp_path: Path) -> None:
    path = _config(tmp_path, EVIL, test_prompt="hello world")
    long_prompt = "a" * 20000 + "!"
    done = _run(
        "import sys; from router import Router\n"
        "r = Router.from_config(sys.argv[1])\n"
        "print(r.route(sys.argv[2]).model, r.route(sys.argv[3]).model)\n",
        str(path),
        PROMPT,
        long_prompt,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["b", "b"]  # no match, found out at once

    # a routing test with such a prompt: `validate` answers (the test fails: rule rest)
    path = _config(tmp_path, EVIL, test_prompt=PROMPT)
    done = subprocess.run(
        [sys.executable, "-m", "router", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "routed to rule 'rest' (expected 'words')" in done.stderr


def test_re2_patterns_match_as_written(tmp_path: Path) -> None:
    with Router.from_config(_config(tmp_path, EVIL, test_prompt="hello world")) as router:
        assert router.route("hello world").model == "a"
        assert router.route(PROMPT).model == "b"
    assert compile_pattern(EVIL).engine == "re2"
    assert compile_pattern(r"(?i)\b(def|class)\b").search("A CLASS here")


@pytest.mark.parametrize("pattern", [r"^(\w+) \1$", r"foo(?=bar)", r"(?<!x)y", r"end\Z"])
def test_patterns_re2_refuses_are_config_errors_at_their_line(tmp_path: Path, pattern: str) -> None:
    with pytest.raises(PatternError, match="RE2 cannot run this pattern"):
        compile_pattern(pattern)
    with pytest.raises(ConfigError) as info:
        Router(load_config(_config(tmp_path, pattern), environ={}))
    [issue] = info.value.issues
    assert issue.line == 4 and issue.pointer == "rules[0].when.matches"
    assert "lookaround, backreferences" in issue.message


def test_a_use_case_pattern_re2_refuses_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(
        "providers: {echo: {type: mock}}\nmodels: {a: {provider: echo}}\n"
        "use_cases:\n  coding: {matches: 'def(?= )'}\nrules: [{name: r, targets: [a]}]\n"
    )
    with pytest.raises(ConfigError) as info:
        Router(load_config(path, environ={}))
    [issue] = info.value.issues
    assert issue.pointer == "use_cases.coding.matches" and issue.line == 4


def test_the_fallback_engine_stops_a_search_with_words() -> None:
    # used only where google-re2 has no wheel: a time limit, then a RouterError
    slow = compile_pattern(r"(.*a){12}(?=b)", engine="bounded")
    assert slow.engine == "bounded"
    with pytest.raises(PatternTimeout) as info:
        slow.search("a" * 2000)
    assert isinstance(info.value, RouterError)
    assert "took more than 50 ms" in str(info.value)
    assert compile_pattern(r"^(\w+) \1$", engine="bounded").search("hi hi")


def test_a_pattern_no_engine_compiles_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(PatternError):
        compile_pattern("(unclosed")
    with pytest.raises(ConfigError) as info:
        Router(load_config(_config(tmp_path, "(unclosed"), environ={}))
    assert "rules[0].when.matches: invalid regular expression" in str(info.value)

"""Raw Python exceptions never leave route() or the CLI: each becomes a RouterError
that says what is wrong, and the CLI prints one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from router import Router
from router.errors import RequestError, RouterError

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
providers: {{echo: {{type: mock, reply: "{{prompt}}"}}}}
models: {{m: {{provider: echo}}}}
rules:
  - {{name: r, targets: [m], prompt: "{template}"}}
settings: {{usage_db: "{usage_db}"}}
"""


def _write(tmp_path: Path, template: str = "{{ prompt }}", usage_db: str = ":memory:") -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(template=template, usage_db=usage_db))
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize(
    ("template", "metadata", "words"),
    [
        ("{{ n + 1 }}", {"n": "abc"}, "TypeError: can only concatenate str"),
        ("{{ range(3)|list }}", {"range": "x"}, "TypeError: 'str' object is not callable"),
        ("{{ 10.0 ** 400 }}", {}, "OverflowError"),
        ("{{ '{}'.format() }}", {}, "IndexError"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", {}, "recursion too deep"),
    ],
)
def test_template_errors_are_bad_requests_with_words(
    tmp_path: Path, template: str, metadata: dict[str, str], words: str
) -> None:
    with Router.from_config(_write(tmp_path, template)) as r:
        with pytest.raises(RequestError) as info:
            r.route("hi", metadata=metadata)
        assert str(info.value).startswith("rule r: prompt template: ")
        assert words in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"response_format": True}, "response_format must be a mapping"),
        ({"tools": True}, "tools must be a list of tool definitions"),
        ({"max_tokens": "abc"}, "max_tokens must be a whole number"),
        ({"max_tokens": -5}, "max_tokens must not be negative"),
        ({"metadata": ["a"]}, "metadata must be a mapping"),
        ({"tags": 3}, "tags must be a list of strings"),
        ({"use_case": 3}, "use_case must be text"),
    ],
)
def test_bad_route_arguments_are_named(tmp_path: Path, kwargs: dict, words: str) -> None:
    with Router.from_config(_write(tmp_path)) as r:
        for call in (r.route, r.explain):
            with pytest.raises(RequestError, match=words):
                call("hi", **kwargs)
        assert r.route("hi").text == "hi"


def _not_a_database(tmp_path: Path) -> str:
    bad = tmp_path / "usage.sqlite"
    bad.write_text("this is not a database, it is a note to self\n" * 20)
    return str(bad)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_not_a_database, "not a SQLite database"),
        (lambda tmp: str(tmp), "is a directory"),
        (lambda tmp: "/dev/null", "not a regular file"),
    ],
)
def test_a_usage_db_that_is_not_a_database(tmp_path: Path, make, words: str) -> None:
    path = _write(tmp_path, usage_db=make(tmp_path))
    with pytest.raises(RouterError, match=f"usage store .*: {words}"):
        Router.from_config(path)
    done = _cli("run", str(path), "hello")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("router: error: usage store ")
    assert words in done.stderr


def test_cli_meta_that_breaks_a_template_is_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "{{ n + 1 }}")
    done = _cli("run", str(path), "hello", "--meta", "n=abc")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert "prompt template: TypeError" in done.stderr

"""The command line: every command, its output and its exit codes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from router.cli import main

CONFIG = textwrap.dedent(
    """\
    providers:
      openai: {type: litellm, api_key: "${ROUTER_TEST_UNSET_KEY}"}
      echo: {type: mock, reply: "echo: {prompt}"}
    models:
      cloud: {provider: openai, model: openai/gpt-4o-mini, context: 128000}
      local: {provider: echo, context: 4096, cost: {input: 1.0, output: 1.0}}
    rules:
      - name: coding
        when: {use_case: coding}
        targets: [cloud, local]
      - name: default
        targets: [local]
    tests:
      - {prompt: "Fix this", use_case: coding, expect: {rule: coding, model: local}}
      - {prompt: "Fix this", use_case: coding, expect: {model: cloud}}
    """
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(CONFIG)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_validate_ok_and_strict(config, capsys):
    code, out, _ = run(capsys, "validate", str(config))
    assert code == 0
    assert "ok: 1 file(s), 2 providers, 2 models, 2 rules, 2 routing tests" in out
    assert "provider openai disabled: ROUTER_TEST_UNSET_KEY is not set" in out
    code, _, err = run(capsys, "validate", "--strict", str(config))
    assert code == 2 and "--strict: provider openai disabled: ROUTER_TEST_UNSET_KEY" in err


def test_validate_points_at_the_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.replace("targets: [local]", "targets: [lokal]"))
    code, out, err = run(capsys, "validate", str(bad))
    assert code == 2 and out == ""
    assert f"{bad}:12: rules[1].targets[0]: unknown model 'lokal'" in err
    assert "Traceback" not in err


def test_explain_prints_the_table(config, capsys):
    code, out, _ = run(capsys, "explain", str(config), "Fix this", "--use-case", "coding")
    assert code == 0
    assert "coding                   serves     strategy ordered" in out
    assert "x cloud: ROUTER_TEST_UNSET_KEY is not set" in out
    assert "chosen: local (provider echo, rule coding)" in out


def test_explain_exits_1_when_nothing_serves(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    no_tests = CONFIG.split("tests:")[0]
    path.write_text(no_tests.replace("context: 4096", "context: 10"))
    code, out, _ = run(capsys, "explain", str(path), "a fairly long prompt " * 5)
    assert code == 1 and "chosen: none" in out


@pytest.mark.parametrize("stream", [False, True])
def test_run_prints_answer_and_decision(config, capsys, stream):
    argv = ["run", str(config), "hello world", "--explain"] + (["--stream"] if stream else [])
    code, out, err = run(capsys, *argv)
    assert code == 0
    assert out.strip() == "echo: hello world"
    assert "-- model local via echo (rule default)" in err
    assert "chosen: local" in err


def test_test_command_reports_each_test(config, capsys):
    code, out, _ = run(capsys, "test", str(config))
    assert code == 0
    assert f"ok   {config}:14 'Fix this': ok" in out
    assert "SKIP" in out and "ROUTER_TEST_UNSET_KEY is not set" in out
    assert "routing tests: 1 ok, 0 failing, 1 skipped" in out


def test_test_command_fails_on_a_wrong_expectation(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(
        CONFIG.replace("expect: {rule: coding, model: local}", "expect: {rule: default}")
    )
    code, out, _ = run(capsys, "test", str(path))
    assert code == 1
    assert "FAIL" in out and "routed to rule 'coding' (expected 'default')" in out
    # a config whose tests fail cannot be loaded to serve
    code, _, err = run(capsys, "validate", str(path))
    assert code == 2 and f"{path}:14" in err and "routing test failed" in err


def test_models_lists_every_model(config, capsys):
    code, out, _ = run(capsys, "models", str(config))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "provider", "context", "$/1M", "in/out", "id", "note"]
    assert any(line.startswith("local") and " 1/1 " in line for line in lines)
    # no cost: in the config: litellm's price map says what the model costs
    assert any(line.startswith("cloud") and " 0.15/0.6 " in line for line in lines)
    assert any(line.startswith("cloud") and "disabled" in line for line in lines)
    assert any(line.startswith("local") and "4096" in line for line in lines)


def test_watch_stops_after_seconds(config, capsys):
    code, out, _ = run(capsys, "watch", str(config), "--seconds", "0.2")
    assert code == 0 and "watching" in out and "version 1" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["explain", "/nonexistent/rules.yaml", "x"],
        ["run"],
        ["bogus"],
        ["explain", "CONFIG", "x", "--meta", "novalue"],
        ["explain", "CONFIG", "x", "--max-tokens", "many"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(config, capsys, argv):
    argv = [str(config) if a == "CONFIG" else a for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors exit from inside the parser
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1


def test_python_dash_m_router_works(config):
    proc = subprocess.run(
        [sys.executable, "-m", "router", "explain", str(config), "hi"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "chosen: local" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "router", "validate", "/nonexistent.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_run_shows_an_open_circuit_and_the_fallback(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            providers:
              echo: {type: mock, reply: "ok"}
              flaky: {type: mock, fail: unavailable, retries: 0}
            models:
              broken: {provider: flaky, breaker: {failures: 1, window: 60, cooldown: 600}}
              good: {provider: echo}
            rules:
              - {name: r, targets: [broken, good]}
            """
        )
    )
    code, out, err = run(capsys, "run", str(path), "hi")
    assert code == 0 and out.strip() == "ok"
    assert "-- failed first: broken (unavailable)" in err
    assert "-- model broken: circuit open: circuit open until" in err


def test_usage_reports_spend_kept_in_sqlite_across_runs(config, capsys, _isolated_usage_db):
    assert run(capsys, "run", str(config), "hello")[0] == 0
    assert run(capsys, "run", str(config), "hello again")[0] == 0
    code, out, _ = run(capsys, "usage", str(config), "--by", "model,rule")
    assert code == 0
    assert f"usage store: {_isolated_usage_db} (days in UTC)" in out
    row = next(line for line in out.splitlines() if line.startswith("local"))
    assert row.split()[:3] == ["local", "default", "2"]


def test_usage_says_when_spend_is_not_kept(tmp_path, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(CONFIG.split("tests:")[0] + 'settings: {usage_db: ":memory:"}\n')
    code, out, _ = run(capsys, "usage", str(path))
    assert code == 0 and "spend is not kept between runs" in out

"""The CLI for people and scripts: stdin, an optional CONFIG, --model/--rule/--system, --json."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from router.cli import main

ROOT = Path(__file__).resolve().parents[1]

CONFIG = textwrap.dedent(
    """\
    providers:
      openai: {type: litellm, api_key: "${ROUTER_TEST_UNSET_KEY}"}
      echo: {type: mock, reply: "echo: {system}|{prompt}"}
    models:
      cloud: {provider: openai, model: openai/gpt-4o-mini, context: 128000}
      local: {provider: echo, context: 4096, cost: {input: 1.0, output: 1.0}}
      other: {provider: echo, model: other-id, context: 4096, cost: {input: 1.0, output: 1.0}}
    rules:
      - name: coding
        when: {use_case: coding}
        targets: [cloud, other]
      - name: default
        targets: [local]
    tests:
      - {prompt: "Fix this", use_case: coding, expect: {rule: coding, model: other}}
    settings: {usage_db: ":memory:"}
    """
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(CONFIG)
    return path


def run(capsys, *argv: str, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_no_arguments_prints_help(capsys) -> None:
    code, out, _ = run(capsys)
    assert code == 0
    assert "usage: router" in out and "validate" in out and "explain" in out


def test_dash_reads_the_prompt_from_stdin(config, capsys, monkeypatch) -> None:
    code, out, _ = run(
        capsys, "run", str(config), "-", stdin="from stdin\n", monkeypatch=monkeypatch
    )
    assert code == 0 and out.strip() == "echo: |from stdin"


def test_piped_stdin_with_no_prompt(config, capsys, monkeypatch) -> None:
    code, out, _ = run(capsys, "run", str(config), stdin="piped text", monkeypatch=monkeypatch)
    assert code == 0 and out.strip() == "echo: |piped text"


def test_a_real_pipe_into_the_command(config: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "router", "run", str(config)],
        input="hello through a pipe",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "echo: |hello through a pipe"


@pytest.mark.parametrize("prompt", ["", "   "])
def test_an_empty_prompt_is_an_error(config, capsys, prompt) -> None:
    code, out, err = run(capsys, "run", str(config), prompt)
    assert code == 2 and "the prompt is empty" in err and not out
    code, _, err = run(capsys, "explain", str(config), prompt)
    assert code == 2 and "the prompt is empty" in err


def test_config_is_optional(config, capsys, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ROUTER_CONFIG", str(config))
    code, out, _ = run(capsys, "run", "hello")
    assert code == 0 and out.strip() == "echo: |hello"
    monkeypatch.delenv("ROUTER_CONFIG")
    here = tmp_path / "cwd"
    here.mkdir()
    (here / "router.yaml").write_text(CONFIG.replace("echo: {system}", "local: {system}"))
    monkeypatch.chdir(here)
    code, out, _ = run(capsys, "run", "hello")
    assert code == 0 and out.strip() == "local: |hello"
    (here / "router.yaml").unlink()
    code, out, _ = run(capsys, "explain", "--json", "hello there")  # the shipped default
    assert json.loads(out)["rule"] == "chat"


def test_model_rule_and_system(config, capsys) -> None:
    code, out, _ = run(capsys, "run", str(config), "hi", "--model", "other")
    assert code == 0 and out.strip() == "echo: |hi"
    code, out, _ = run(capsys, "explain", str(config), "hi", "--rule", "coding", "--json")
    assert json.loads(out)["rule"] == "coding"
    code, out, _ = run(capsys, "run", str(config), "hi", "--system", "be brief")
    assert code == 0 and out.strip() == "echo: be brief|hi"


def test_model_provider_slash_id(config, capsys) -> None:
    """`--model PROVIDER/ID`: a model the config does not list, through its provider."""
    code, out, _ = run(capsys, "run", str(config), "hi", "--model", "echo/adhoc-id", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["text"] == "echo: |hi"
    assert (doc["model"], doc["rule"]) == ("echo/adhoc-id", "model:echo/adhoc-id")
    code, out, _ = run(capsys, "explain", str(config), "hi", "--model", "echo/adhoc-id", "--json")
    assert code == 0 and json.loads(out)["model"] == "echo/adhoc-id"
    code, _, err = run(capsys, "run", str(config), "hi", "--model", "nowhere/x")
    assert code != 0
    assert "unknown model 'nowhere/x'" in err and "providers: echo, openai" in err


def test_json_run_and_explain(config, capsys) -> None:
    code, out, _ = run(capsys, "run", str(config), "hello", "--json")
    doc = json.loads(out)
    assert code == 0
    assert {"text", "model", "provider", "rule", "usage", "cost_usd", "latency_s", "attempts"} <= (
        set(doc)
    )
    assert doc["text"] == "echo: |hello" and doc["model"] == "local"
    assert doc["decision"]["rule"] == "default"
    code, out, _ = run(capsys, "explain", str(config), "x", "-u", "coding", "--json")
    doc = json.loads(out)
    assert doc["model"] == "other" and "cloud" in doc["rejected"]
    assert doc["rules"][0]["rule"] == "coding"


def test_json_test_and_validate(config, capsys) -> None:
    code, out, _ = run(capsys, "test", str(config), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["passed"] == 1 and doc["tests"][0]["status"] == "ok"
    code, out, _ = run(capsys, "validate", str(config), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["models"] == 3
    assert doc["disabled"] == {"openai": "ROUTER_TEST_UNSET_KEY is not set"}
    bad = config.parent / "bad.yaml"
    bad.write_text(CONFIG.replace("targets: [local]", "targets: [lokal]"))
    code, out, _ = run(capsys, "validate", str(bad), "--json")
    doc = json.loads(out)
    assert code == 2 and not doc["ok"]
    assert doc["errors"][0]["pointer"] == "rules[1].targets[0]" and doc["errors"][0]["line"]


def test_validate_strict_never_says_ok_before_failing(config, capsys) -> None:
    code, out, err = run(capsys, "validate", "--strict", str(config))
    assert code == 2 and "ok" not in out and "provider openai disabled" in err


def test_unknown_use_case_is_a_warning(config, capsys) -> None:
    code, _, err = run(capsys, "explain", str(config), "hi", "--use-case", "codign")
    assert code == 0
    assert "warning: use case 'codign' is named by no rule or detector" in err
    _, _, err = run(capsys, "explain", str(config), "hi", "--use-case", "coding")
    assert "warning" not in err


def test_validate_examples_folder(capsys) -> None:
    code, out, err = run(capsys, "validate", str(ROOT / "examples"))
    assert code == 0, err
    assert out.count("ok: ") == len(list((ROOT / "examples").rglob("*.yaml")))


def test_watch_prints_each_failure_once_and_when_good_again(config, capsys) -> None:
    from router import Router
    from router.cli import WatchPrinter

    good = config.read_text()
    with Router.from_config(config) as r:
        r.on_reload(WatchPrinter())
        config.write_text(good.replace("targets: [local]", "targets: [lokal]"))
        r.reload()
        r.reload()  # saved again, same mistake
        config.write_text(good)
        r.reload()
    out = capsys.readouterr().out
    assert out.count("reload failed, still serving version 1") == 1
    assert out.count("unknown model 'lokal'") == 1
    assert out.strip().endswith("config is good again: version 1 serves")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_status_line_on_a_terminal_while_adapters_load(config, monkeypatch) -> None:
    import threading

    from router import Router
    from router.cli import loading_status

    monkeypatch.setenv("ROUTER_TEST_UNSET_KEY", "sk-test")
    with Router.from_config(config, warm=False, check_tests=False) as r:
        r.warmed.clear()
        err = _Terminal()
        monkeypatch.setattr(sys, "stderr", err)
        threading.Timer(0.05, r.warmed.set).start()  # the warm-up thread finishing
        loading_status(r)
        assert err.getvalue().startswith("loading litellm ...")
        assert err.getvalue().endswith("\r\033[K")
        plain = io.StringIO()
        monkeypatch.setattr(sys, "stderr", plain)
        r.warmed.clear()
        threading.Timer(0.05, r.warmed.set).start()
        loading_status(r)
        assert plain.getvalue() == ""  # not a terminal: nothing

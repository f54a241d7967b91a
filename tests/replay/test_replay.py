"""Replay and diff: a real request log written by a real Router, read back by replay."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from router import Router
from router.cli import main
from router.replay import replay

OLD = textwrap.dedent(
    """\
    providers:
      echo: {type: mock, reply: "ok {prompt}"}
    models:
      small: {provider: echo, model: small-1, context: 4096, cost: {input: 1, output: 2}}
      large: {provider: echo, model: large-1, context: 128000, cost: {input: 10, output: 20}}
    rules:
      - name: long-docs
        when: {tokens: {gt: 3000}}
        targets: [large]
      - name: coding
        when: {use_case: coding}
        targets: [large, small]
      - name: default
        targets: [small]
    use_cases:
      coding: {matches: '\\bdef\\b'}
    settings:
      usage_db: ":memory:"
      request_log: {path: requests.jsonl, log_text: LOG_TEXT}
    """
)

# coding now prefers the cheap model; the long-docs rule is gone, so long requests
# fall to `small`, whose window is too small for them.
NEW = textwrap.dedent(
    """\
    providers:
      echo: {type: mock, reply: "ok {prompt}"}
    models:
      small: {provider: echo, model: small-1, context: 4096, cost: {input: 1, output: 2}}
      large: {provider: echo, model: large-1, context: 128000, cost: {input: 10, output: 20}}
    rules:
      - name: coding
        when: {use_case: coding}
        targets: [small, large]
      - name: default
        targets: [small]
    use_cases:
      coding: {matches: '\\bdef\\b'}
    tests:
      - {prompt: "def f(): pass", expect: {rule: coding, model: small}}
      - {prompt: "hello", expect: {model: large}}
    """
)

LONG = "word " * 5000  # ~6,250 tokens: over small's 4,096


def _traffic(config: Path) -> None:
    with Router.from_config(config) as r:
        for i in range(5):
            r.route(f"Fix bug {i}", use_case="coding")
        r.route("def f(): return 1")  # coding by detection: its text is the only clue
        for i in range(4):
            r.route(f"hello {i}")
        for _ in range(2):
            r.route(LONG)


@pytest.fixture(params=[False, True], ids=["features-only", "with-text"])
def logged(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, Path, Path]:
    old = tmp_path / "old.yaml"
    old.write_text(OLD.replace("LOG_TEXT", "true" if request.param else "false"))
    new = tmp_path / "new.yaml"
    new.write_text(NEW)
    _traffic(old)
    return old, new, tmp_path / "requests.jsonl"


def _expected_costs(log: Path) -> tuple[float, float, float]:
    """Before: what was billed (all, and without the long ones that no longer route).
    After: coding at small's price, long ones not routed."""
    before = before_both = after = 0.0
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        before += rec["cost_usd"]
        if rec["model"] == "large" and rec["rule"] == "long-docs":
            continue
        before_both += rec["cost_usd"]
        u = rec["usage"]
        after += (u["input_tokens"] * 1 + u["output_tokens"] * 2) / 1e6
    return before, before_both, after


def test_replay_counts_moves_costs_losses_and_runs_the_new_tests(logged):
    _old, new, log = logged
    report = replay(new, log)
    assert report.requests == 12 and report.unreadable == 0
    b, a = report.before, report.after
    assert dict(b.by_rule) == {"coding": 6, "default": 4, "long-docs": 2}
    assert dict(a.by_rule) == {"coding": 6, "default": 4, "(not routed)": 2}
    assert dict(b.by_model) == {"large": 8, "small": 4}
    assert dict(a.by_model) == {"small": 10, "(not routed)": 2}
    assert report.changed_count == 6 and report.moved_fraction == pytest.approx(0.5)
    (move,) = report.changed.values()
    assert move.key == "coding/large -> coding/small" and move.count == 6
    assert len(move.examples) == 3
    (lost,) = report.no_longer_routed.values()
    assert lost.count == 2 and lost.key == "every candidate rejected (small: context)"
    before, before_both, after = _expected_costs(log)
    assert b.cost_usd == pytest.approx(before) and a.cost_usd == pytest.approx(after)
    assert b.routed_both_usd == pytest.approx(before_both)
    assert a.routed_both_usd == pytest.approx(after)  # everything it routes, both routed
    # Like for like: the two long requests that no longer route are no saving.
    assert report.cost_change == pytest.approx((after - before_both) / before_both)
    assert after < before_both < before
    assert report.tests_failed == 1
    assert [t["ok"] for t in report.tests] == [True, False]


def test_replay_against_the_old_config_prices_both_sides_by_their_configs(logged):
    old, new, log = logged
    report = replay(new, log, against=old)
    assert report.before.label == str(old)
    assert dict(report.before.by_rule) == {"coding": 6, "default": 4, "long-docs": 2}
    assert report.changed_count == 6
    _, _, after = _expected_costs(log)
    assert report.after.cost_usd == pytest.approx(after)
    # Both sides priced by config from the same logged tokens: against itself nothing moves.
    same = replay(old, log, against=old)
    assert same.changed_count == 0 and not same.no_longer_routed
    assert same.before.cost_usd == pytest.approx(same.after.cost_usd)


def test_without_text_a_request_keeps_the_use_case_it_was_routed_with(logged, tmp_path):
    _old, new, log = logged
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    detected = next(x for x in lines if x["use_case"] is None and x["rule"] == "coding")
    assert detected["use_case_detected"] == "coding"
    # A new detector that would claim "def" for chat: only text can tell.
    new.write_text(NEW.replace("coding: {matches: '\\bdef\\b'}", "coding: {matches: 'zzz'}"))
    assert "zzz" in new.read_text()
    report = replay(new, log)
    has_text = "messages" in detected
    assert report.without_text == (0 if has_text else 12)
    moved = {g.key: g.count for g in report.changed.values()}
    if has_text:
        assert moved["coding/large -> default/small"] == 1
    else:
        assert "coding/large -> default/small" not in moved


def test_unreadable_lines_are_counted_and_named(tmp_path, logged):
    _, new, log = logged
    broken = tmp_path / "broken.jsonl"
    broken.write_text(log.read_text() + "not json\n" + '{"v": 1}\n')
    report = replay(new, [broken])
    assert report.requests == 12 and report.unreadable == 2
    assert report.first_unreadable.startswith(f"{broken}:13: not JSON")


def test_router_replay_uses_its_own_config(logged):
    _old, new, log = logged
    with Router.from_config(new, check_tests=False) as r:
        report = r.replay(log)
    assert report.changed_count == 6


def test_cli_replay_prints_the_report_and_fails_ci_on_thresholds(logged, capsys):
    old, new, log = logged
    code = main(["replay", str(new), "--log", str(log), "--against", str(old)])
    out = capsys.readouterr().out
    assert code == 1  # a routing test of the new config fails
    assert "coding/large -> coding/small" in out and "changed: 6 of 12 (50.0%)" in out
    assert "no longer routed: 2" in out and "FAIL" in out
    new.write_text(NEW.replace('  - {prompt: "hello", expect: {model: large}}\n', ""))
    assert "model: large}}" not in new.read_text()
    assert main(["replay", str(new), "--log", str(log)]) == 0
    capsys.readouterr()
    code = main(["replay", str(new), "--log", str(log), "--json", "--max-moved", "10"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["changed"] == 6 and data["moved_fraction"] == 0.5
    assert any("50.0% of requests change route (limit 10%)" in v for v in data["violations"])
    assert data["after"]["by_model"] == {"small": 10, "(not routed)": 2}


def test_cli_replay_with_no_readable_line_is_a_usage_error(tmp_path, logged, capsys):
    _, new, _ = logged
    empty = tmp_path / "empty.jsonl"
    empty.write_text("garbage\n")
    assert main(["replay", str(new), "--log", str(empty)]) == 2
    assert "no logged request could be read" in capsys.readouterr().err


def test_cli_diff_describes_the_change_in_words(logged, capsys):
    old, new, _ = logged
    assert main(["diff", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "rule long-docs removed" in out
    assert "rule coding: targets large, small -> small, large" in out
    assert main(["diff", str(old), str(old), "--exit-code"]) == 0
    assert capsys.readouterr().out.strip() == "no changes"
    assert main(["diff", str(old), str(new), "--exit-code"]) == 1


def test_a_broken_new_config_is_a_config_error_with_its_line(logged, tmp_path, capsys):
    _, new, log = logged
    new.write_text(
        NEW.replace("targets: [small, large]", "targets: [small, large]\n    system: '{{ x'")
    )
    assert "system:" in new.read_text()
    assert main(["replay", str(new), "--log", str(log)]) == 2
    err = capsys.readouterr().err
    assert f"{new}:" in err and "template" in err


def test_the_worked_example_runs_and_finds_its_problems(tmp_path, capsys):
    import importlib.util
    import shutil

    here = Path(__file__).resolve().parents[2] / "examples" / "replay"
    for name in ("old.yaml", "new.yaml"):
        shutil.copy(here / name, tmp_path / name)
    spec = importlib.util.spec_from_file_location("replay_change", here / "replay_change.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    problems = example.main(tmp_path)
    out = capsys.readouterr().out
    assert "replayed 500 logged request(s)" in out
    assert "coding/opus -> coding/sonnet" in out
    assert any("would no longer route" in p for p in problems)
    assert any("change route" in p for p in problems)


def test_validating_a_config_with_a_request_log_writes_no_file(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text(OLD.replace("LOG_TEXT", "false"))
    assert main(["validate", str(old)]) == 0
    assert not (tmp_path / "requests.jsonl").exists()


def test_a_round_robin_rule_drawing_another_candidate_is_not_a_move(tmp_path):
    cfg = tmp_path / "rr.yaml"
    cfg.write_text(
        "providers: {echo: {type: mock}}\n"
        "models: {a: {provider: echo}, b: {provider: echo}, c: {provider: echo}}\n"
        "rules: [{name: spread, targets: [a, b], strategy: round_robin}]\n"
        "settings: {usage_db: ':memory:', request_log: log.jsonl}\n"
    )
    with Router.from_config(cfg) as r:
        for i in range(6):
            r.route(f"q{i}")
    assert replay(cfg, tmp_path / "log.jsonl").changed_count == 0
    cfg.write_text(cfg.read_text().replace("targets: [a, b]", "targets: [a, c]"))
    moved = replay(cfg, tmp_path / "log.jsonl")
    assert moved.changed_count == 3  # the requests b served: c now takes its turns

"""`Router.compare()` and `router compare` over real HTTP to the fake server."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from router import Router, RouterError
from router.cli import main
from router.testing import FakeProviderServer, reply, server_error, slow


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="Paris is the capital of France.") as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, fake: FakeProviderServer) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            providers:
              cloud: {{type: litellm, api_key: k, api_base: "{fake.base_url}", retries: 0}}
              keyless: {{type: litellm, api_key: "${{COMPARE_TEST_UNSET}}"}}
            models:
              a: {{provider: cloud, model: openai/model-a, cost: {{input: 1.0, output: 2.0}}}}
              b: {{provider: cloud, model: openai/model-b, cost: {{input: 0, output: 0}}}}
              c: {{provider: cloud, model: openai/model-c}}
              nokey: {{provider: keyless, model: openai/gpt-4o}}
            rules:
              - {{name: default, targets: [a, b, c]}}
            settings: {{usage_db: ":memory:"}}
            """
        )
    )
    return path


def test_compare_runs_in_parallel_and_keeps_failures_in_their_row(
    config: Path, fake: FakeProviderServer
) -> None:
    # Each request waits 0.3 s: served in parallel, three are in flight at once.
    fake.enqueue(slow(0.3), slow(0.3), slow(0.3))
    with Router.from_config(config) as r:
        rows = r.compare("Capital of France?", models=["a", "b", "c", "nokey"], max_tokens=20)
    assert [row.model for row in rows] == ["a", "b", "c", "nokey"]
    assert fake.max_in_flight == 3
    for row in rows[:3]:
        assert row.ok and row.text == "Paris is the capital of France."
        assert row.ttft_s is not None and row.total_s is not None
        assert 0 < row.ttft_s <= row.total_s
        assert row.usage.output_tokens == 6
    assert rows[0].cost_usd == pytest.approx((10 * 1.0 + 6 * 2.0) / 1e6)
    assert rows[1].cost_usd == 0
    assert rows[3].error == "disabled: provider keyless: COMPARE_TEST_UNSET is not set"
    sent = sorted(q.body["model"] for q in fake.requests if q.path == "/v1/chat/completions")
    assert sent == ["model-a", "model-b", "model-c"]


def test_a_failing_model_is_a_row_and_spend_is_recorded(
    config: Path, fake: FakeProviderServer
) -> None:
    fake.enqueue(server_error(), reply("fine"))
    with Router.from_config(config) as r:
        # one at a time, so the scripted failure lands on the first model
        first = r.compare("hi", models=["a"])
        second = r.compare("hi", models=["a"])
        usage = r.usage(by=("model", "rule"))
    assert not first[0].ok and first[0].error and first[0].error.startswith("unavailable: ")
    assert second[0].ok and second[0].text == "fine"
    assert [(u["model"], u["rule"], u["requests"]) for u in usage] == [("a", "compare", 1)]


def test_unknown_model_is_an_error(config: Path) -> None:
    with Router.from_config(config) as r, pytest.raises(RouterError, match="unknown model"):
        r.compare("hi", models=["a", "zzz"])


def test_cli_compare_table_and_json(config: Path, fake: FakeProviderServer, capsys) -> None:
    fake.reply_text = "word " * 40
    code = main(["compare", str(config), "Say words", "--models", "a,b"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["model", "ttft", "total", "tokens", "cost", "USD", "answer"]
    assert lines[2].startswith("a ") and lines[2].rstrip().endswith("word")
    assert any(line.startswith(" " * 20) and "word" in line for line in lines[3:])  # wrapped
    code = main(["compare", str(config), "Say words", "--models", "a,nokey", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [r["ok"] for r in rows] == [True, False]
    assert rows[0]["output_tokens"] == 40 and rows[0]["ttft_s"] > 0


def test_an_unknown_price_is_unknown_not_zero(
    config: Path, fake: FakeProviderServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`c` (openai/model-c) is in no price map and declares none."""
    with Router.from_config(config) as r:
        rows = r.compare("hi", models=["b", "c"], max_tokens=5)
        usage = {u["model"]: u for u in r.usage(by=("model",))}
    free, unknown = rows
    assert free.ok and free.cost_usd == 0.0  # declared free: $0 is known
    assert unknown.ok and unknown.cost_usd is None
    assert unknown.as_dict()["cost_usd"] is None and unknown.as_dict()["price_known"] is False
    assert usage["c"]["unpriced_requests"] == 1 and usage["b"]["unpriced_requests"] == 0
    assert main(["compare", str(config), "hi", "--models", "c"]) == 0
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("c ")]
    assert row and " unknown " in row[0] and "0.000000" not in row[0]

"""`Router.batch()` and `router batch`: over real HTTP to the fake server, into real files."""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from router import Router
from router.cli import main
from router.runtime.batch import BatchOutput, Progress, run_batch
from router.testing import FakeProviderServer, reply, server_error, slow


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer(reply="fine") as server:
        yield server


def write_config(tmp_path: Path, fake: FakeProviderServer, extra: str = "") -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            providers:
              cloud: {{type: litellm, api_key: k, api_base: "{fake.base_url}", retries: 0}}
            models:
              a: {{provider: cloud, model: openai/model-a, cost: {{input: 1000, output: 1000}}}}
            rules:
              - {{name: default, targets: [a], on_budget: error}}
            settings: {{usage_db: ":memory:"}}
            """
        )
        + textwrap.dedent(extra)
    )
    return path


def jsonl(path: Path, *items: object) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_one_line_per_input_line_in_order_with_errors_in_place(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        '"first"\n'
        '{"id": "q2", "messages": [{"role": "user", "content": "second"}], "max_tokens": 5}\n'
        "not json\n"
        '{"prompt": "fourth", "use_case": "chat", "tags": ["x"]}\n'
    )
    fake.enqueue(reply("one"), reply("two"), server_error())
    out = tmp_path / "out.jsonl"
    with Router.from_config(write_config(tmp_path, fake)) as r:
        records = r.batch(src, output=out, concurrency=1)
    assert read(out) == records
    assert [rec["line"] for rec in records] == [1, 2, 3, 4]
    assert [rec["ok"] for rec in records] == [True, True, False, False]
    assert records[0]["text"] == "one" and records[1]["text"] == "two"
    assert records[1]["id"] == "q2" and records[1]["model"] == "a"
    assert records[2]["error"]["kind"] == "bad_input"
    assert "not JSON" in records[2]["error"]["message"]
    assert records[3]["error"]["kind"] == "no_route"
    assert "unavailable" in records[3]["error"]["message"]
    sent = [q.body for q in fake.requests if q.path == "/v1/chat/completions"]
    assert sent[1]["max_tokens"] == 5


def test_concurrency_is_bounded(tmp_path: Path, fake: FakeProviderServer) -> None:
    fake.enqueue(*[slow(0.2, "x")] * 8)
    with Router.from_config(write_config(tmp_path, fake)) as r:
        records = r.batch([f"p{i}" for i in range(8)], concurrency=3)
    assert all(rec["ok"] for rec in records) and len(records) == 8
    assert fake.max_in_flight == 3


def test_rerun_resumes_and_redoes_only_failed_lines(tmp_path: Path, fake: FakeProviderServer):
    src = jsonl(tmp_path / "in.jsonl", "a", "b", "c", "d")
    out = tmp_path / "out.jsonl"
    config = write_config(tmp_path, fake)
    fake.enqueue(reply("A"), reply("B"), server_error(), reply("D"))
    with Router.from_config(config) as r:
        first = r.batch(src, output=out, concurrency=1)
    assert [rec["ok"] for rec in first] == [True, True, False, True]
    fake.reset()
    fake.enqueue(reply("C"))
    with Router.from_config(config) as r:
        second = r.batch(src, output=out, concurrency=1)
    assert [rec.get("text") for rec in second] == ["A", "B", "C", "D"]
    assert len([q for q in fake.requests if q.path == "/v1/chat/completions"]) == 1
    # An edited input line is answered again.
    jsonl(src, "a", "b", "c", "d changed")
    fake.reset()
    with Router.from_config(config) as r:
        third = r.batch(src, output=out, concurrency=1)
    assert third[3]["text"] == "fine" and third[0]["text"] == "A"
    assert len([q for q in fake.requests if q.path == "/v1/chat/completions"]) == 1


def test_interrupt_leaves_a_consistent_file_that_resumes(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    src = [json.dumps(f"p{i}") for i in range(1, 7)]
    out_path = tmp_path / "out.jsonl"
    with Router.from_config(write_config(tmp_path, fake)) as r:

        def route(prompt, **kw):
            if prompt == "p4":
                raise KeyboardInterrupt  # as Ctrl-C lands in the middle of a batch
            return r.route(prompt, **kw)

        with pytest.raises(KeyboardInterrupt):
            run_batch(route, src, BatchOutput(out_path), concurrency=1, checkpoint_s=0)
        kept = read(out_path)  # every line parses: nothing was cut short
        assert [rec["line"] for rec in kept] == [1, 2, 3]
        assert not list(tmp_path.glob(".out.jsonl.*"))  # no temporary file left behind
        records = run_batch(r.route, src, BatchOutput(out_path), concurrency=2)
    assert [rec["line"] for rec in records] == [1, 2, 3, 4, 5, 6]
    assert read(out_path) == records and all(rec["ok"] for rec in records)


def test_budgets_are_honoured(tmp_path: Path, fake: FakeProviderServer) -> None:
    # Each request costs (10 + 1) * 1000 / 1e6 = $0.011; spent reaches the day's $0.02 after two.
    config = write_config(tmp_path, fake, "budgets: {global: {daily: 0.02}}\n")
    with Router.from_config(config) as r:
        records = r.batch(["a", "b", "c", "d"], concurrency=1)
    assert [rec["ok"] for rec in records] == [True, True, False, False]
    assert records[2]["error"]["kind"] == "budget_exceeded"
    assert len([q for q in fake.requests if q.path == "/v1/chat/completions"]) == 2


def test_progress_line_has_rate_and_eta() -> None:
    now = [100.0]
    stream = io.StringIO()
    p = Progress(total=100, skipped=10, stream=stream, clock=lambda: now[0])
    for i in range(20):
        now[0] += 0.5
        p.step(ok=i != 0)
    # 20 done in 10 s: 2/s; 70 left: 35 s
    assert p.line() == "30/100 [#######.................] 2.0/s ETA 0:35 (1 failed)"
    assert stream.getvalue().count("\r") == 20


def test_cli_batch(tmp_path: Path, fake: FakeProviderServer, capsys) -> None:
    src = jsonl(tmp_path / "in.jsonl", "a", {"prompt": "b", "id": 7})
    out = tmp_path / "out.jsonl"
    code = main(["batch", str(write_config(tmp_path, fake)), str(src), "-o", str(out), "-c", "2"])
    err = capsys.readouterr().err
    assert code == 0
    assert "2 lines, 2 ok, 0 failed" in err and str(out) in err
    assert [rec["id"] for rec in read(out)] == [None, 7]


@pytest.mark.slow
def test_ctrl_c_on_the_real_command_leaves_a_file_that_resumes(
    tmp_path: Path, fake: FakeProviderServer
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    fake.enqueue(*[slow(0.3, "x")] * 20)
    src = jsonl(tmp_path / "in.jsonl", *[f"p{i}" for i in range(20)])
    out = tmp_path / "out.jsonl"
    argv = [
        sys.executable,
        "-m",
        "router",
        "batch",
        str(write_config(tmp_path, fake)),
        str(src),
        "-o",
        str(out),
        "-c",
        "2",
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.exists() and out.read_text().strip()):
        time.sleep(0.05)  # bounded: the first checkpoint lands within about a second
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    kept = read(out)  # every line is whole JSON
    assert 0 < len(kept) < 20
    assert [rec["line"] for rec in kept] == sorted(rec["line"] for rec in kept)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    final = read(out)
    assert [rec["line"] for rec in final] == list(range(1, 21))
    assert all(rec["ok"] for rec in final)
    calls = [q for q in fake.requests if q.path == "/v1/chat/completions"]
    assert len(calls) <= 20 + 2  # kept lines were not asked again; at most 2 were in flight

"""The request log: real routes over HTTP to the fake server, a real file read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router import NoRouteError, Router
from router.observe.request_log import RequestLog, RotatingWriter, rejection_kind
from tests.observe.conftest import CANARY


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_request_is_one_line_with_its_features_decision_and_outcome(write_config, fake):
    cfg = write_config("  request_log: logs/requests.jsonl")
    log = cfg.parent / "logs" / "requests.jsonl"
    secret_prompt = "Refactor my secret function zebra-42"
    with Router.from_config(cfg) as r:
        res = r.route(
            secret_prompt, use_case="coding", tags=["ci"], metadata={"team": "blue"}, temperature=0
        )
        chunks = list(r.route("hello there", stream=True))
        with pytest.raises(NoRouteError):
            r.route("x " * 20000)  # too long for every model
    first, second, third = _lines(log)
    assert first["use_case"] == "coding" and first["tags"] == ["ci"]
    assert first["metadata_keys"] == ["team"] and "metadata" not in first
    assert first["rule"] == "coding" and first["model"] == "large"
    assert first["served_model"] == res.model == "large"
    assert first["params"] == {"temperature": 0}
    assert first["tokens"] > 0 and first["outcome"] == "ok"
    assert first["usage"] == {
        "input_tokens": res.usage.input_tokens,
        "output_tokens": res.usage.output_tokens,
    }
    assert first["cost_usd"] == pytest.approx(res.cost_usd) and res.cost_usd > 0
    assert first["config_version"] == 1 and len(first["config_sha"]) == 64
    assert first["cache"] is None and first["latency_ms"] > 0
    assert second["stream"] is True and second["rule"] == "default"
    assert second["ttft_ms"] is not None and chunks[-1].result is not None
    assert third["outcome"] == "no_route" and third["model"] is None
    assert third["rejected"] == {"small": "context"}
    raw = log.read_text()
    assert secret_prompt not in raw and "zebra" not in raw and "blue" not in raw
    assert "Hello from the fake provider" not in raw
    assert CANARY not in raw


def test_log_text_adds_prompt_answer_and_metadata(write_config, fake):
    cfg = write_config("  request_log: {path: requests.jsonl, log_text: true}")
    with Router.from_config(cfg) as r:
        r.route("tell me about zebras", metadata={"team": "blue"})
    (line,) = _lines(cfg.parent / "requests.jsonl")
    assert line["messages"] == [{"role": "user", "content": "tell me about zebras"}]
    assert line["text"] == "Hello from the fake provider."
    assert line["metadata"] == {"team": "blue"}
    assert CANARY not in json.dumps(line)


def test_failed_attempts_are_logged_by_kind_never_by_message(write_config, fake):
    from router.testing import server_error

    cfg = write_config("  request_log: requests.jsonl")
    fake.enqueue(server_error(503))
    with Router.from_config(cfg) as r:
        res = r.route("Fix it", use_case="coding")
    assert res.model == "small"
    (line,) = _lines(cfg.parent / "requests.jsonl")
    assert [a["model"] for a in line["attempts"]] == ["large"]
    assert line["attempts"][0]["error"] == "unavailable"
    assert set(line["attempts"][0]) == {"model", "provider", "error", "duration_ms"}
    assert line["model"] == "large" and line["served_model"] == "small"


def test_the_log_rotates_by_size_and_keeps_whole_lines(tmp_path):
    w = RotatingWriter(tmp_path / "r.jsonl", max_bytes=200, backups=2)
    for i in range(50):
        w.write(json.dumps({"i": i, "pad": "x" * 30}).encode() + b"\n")
    w.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["r.jsonl", "r.jsonl.1", "r.jsonl.2"]
    seen = []
    for name in ("r.jsonl.2", "r.jsonl.1", "r.jsonl"):
        text = (tmp_path / name).read_text()
        assert len(text.encode()) <= 200
        seen += [json.loads(line)["i"] for line in text.splitlines()]
    assert seen == list(range(50 - len(seen), 50))  # the newest lines, in order


def test_a_reload_that_moves_the_log_writes_to_the_new_file(write_config, fake):
    cfg = write_config("  request_log: first.jsonl")
    with Router.from_config(cfg) as r:
        r.route("one")
        write_config("  request_log: second.jsonl")
        assert r.reload().ok
        r.route("two")
    assert len(_lines(cfg.parent / "first.jsonl")) == 1
    (line,) = _lines(cfg.parent / "second.jsonl")
    assert line["config_version"] == 2


def test_an_observer_that_raises_never_fails_the_request(write_config, fake, caplog):
    class Broken:
        def request_ended(self, event):
            raise RuntimeError("observer bug")

        def reloaded(self, event):
            raise RuntimeError("observer bug")

        def close(self):
            pass

    with Router.from_config(write_config(), observers=[Broken()]) as r:
        assert r.route("hi").text == "Hello from the fake provider."
    assert "observer 'Broken' failed" in caplog.text


def test_request_log_object_can_be_given_as_an_observer(tmp_path, write_config, fake):
    log = RequestLog(tmp_path / "mine.jsonl")
    with Router.from_config(write_config(), observers=[log]) as r:
        r.route("hi")
    assert _lines(tmp_path / "mine.jsonl")[0]["rule"] == "default"


def test_rejection_kind_prefers_the_engines_kind():
    class Why(str):
        kind = "budget"

    assert rejection_kind(Why("anything at all")) == "budget"
    assert rejection_kind("context too small: needs 9 tokens") == "context"


LOGGING_WORKER = """
import sys
from router import Router
with Router.from_config(sys.argv[1]) as r:
    for i in range(int(sys.argv[2])):
        r.route(f"hello {i} " + "pad " * (i % 50))
"""


def test_worker_processes_sharing_one_log_never_interleave_within_a_line(tmp_path):
    import os
    import subprocess
    import sys

    cfg = tmp_path / "r.yaml"
    cfg.write_text(
        "providers: {echo: {type: mock}}\n"
        "models: {m: {provider: echo}}\n"
        "rules: [{name: default, targets: [m]}]\n"
        "settings: {usage_db: ':memory:', request_log: shared.jsonl}\n"
    )
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "ROUTER_TRACING": "off"}
    procs = [
        subprocess.Popen([sys.executable, "-c", LOGGING_WORKER, str(cfg), "60"], env=env)
        for _ in range(3)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    lines = _lines(tmp_path / "shared.jsonl")
    assert len(lines) == 180 and all(x["outcome"] == "ok" for x in lines)


def test_a_stream_the_caller_stops_reading_is_logged_as_cancelled(write_config, fake):
    fake.reply_text = "many words " * 20
    cfg = write_config("  request_log: requests.jsonl")
    with Router.from_config(cfg) as r:
        stream = r.route("go", stream=True)
        next(iter(stream))
        stream.close()
        assert r.snapshot._users == 0
    (line,) = _lines(cfg.parent / "requests.jsonl")
    assert line["outcome"] == "cancelled" and line["error"] == "GeneratorExit"
    assert line["ttft_ms"] is not None


def test_flush_waits_for_the_writer_thread(write_config, fake):
    cfg = write_config("  request_log: requests.jsonl")
    with Router.from_config(cfg) as r:
        for i in range(5):
            r.route(f"q{i}")
        assert r._hooks.request_log.flush()
        assert len(_lines(cfg.parent / "requests.jsonl")) == 5

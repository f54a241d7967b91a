"""`router serve` in front of the real local Gemma (llama.cpp in the server process)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.providers.llama_fixtures import llama_cpp_module, models_dir
from tests.server.conftest import assert_no_secrets
from tests.server.serving import ServerProcess, fake_config

pytestmark = pytest.mark.llama

openai = pytest.importorskip("openai")


__all__ = ["llama_cpp_module", "models_dir"]  # fixtures this module uses


@pytest.fixture(scope="module")
def local_server(
    fake_server, models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    config = tmp_path_factory.mktemp("local") / "router.yaml"
    config.write_text(fake_config(fake_server.base_url, models_dir=models_dir))
    with ServerProcess(config, "--no-watch") as server:
        yield server
    assert_no_secrets(server.output)


def test_tags_route_to_the_local_model_which_answers(local_server):
    with openai.OpenAI(base_url=local_server.base_url, api_key="x", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="auto",
            messages=[{"role": "user", "content": "The capital of France is"}],
            max_tokens=8,
            temperature=0,
            extra_body={"tags": ["local"]},
        )
        done = raw.parse()
        assert done.model == "gemma" and raw.headers["x-router-rule"] == "local"
        assert done.choices[0].message.content.strip()
        assert 0 < done.usage.completion_tokens <= 8
        assert float(raw.headers["x-router-cost-usd"]) == 0.0

        chunks = list(
            client.chat.completions.create(
                model="gemma",
                messages=[{"role": "user", "content": "Count: one, two,"}],
                max_tokens=8,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_a_client_gone_mid_stream_stops_the_local_generation(local_server):
    body = json.dumps(
        {
            "model": "gemma",
            "messages": [{"role": "user", "content": "Write a very long story about a fox."}],
            "max_tokens": 900,
            "stream": True,
        }
    ).encode()
    with socket.create_connection(("127.0.0.1", local_server.port), timeout=60) as sock:
        sock.sendall(
            (
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        got = b""
        while got.count(b"data: ") < 2:
            piece = sock.recv(65536)
            assert piece, got
            got += piece
    # The generation stops at its next token and the model is free: bounded poll.
    in_flight = None
    for _ in range(100):  # about 2 s; 900 tokens take this model far longer on a CPU
        status = httpx.get(local_server.url + "/v1/router/status").json()
        in_flight = status["state"]["models"].get("gemma", {}).get("in_flight", 0)
        if in_flight == 0:
            break
        time.sleep(0.02)
    assert in_flight == 0
    # Nothing was recorded for the abandoned stream: spend counts served answers only.
    usage = httpx.get(local_server.url + "/v1/router/status").json()
    assert usage["server"]["in_flight"] == 1
    with openai.OpenAI(base_url=local_server.base_url, api_key="x", max_retries=0) as client:
        done = client.chat.completions.create(
            model="gemma", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
    assert done.choices[0].message.content is not None

"""`POST /v1/embeddings`: the official `openai` SDK against `router serve` (a real process)
before the fake provider, in both encodings, and errors in OpenAI's shape."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator

import httpx
import pytest

from router.testing import FakeProviderServer, server_error
from tests.server.serving import ALICE_KEY, BOB_KEY, ServerProcess

openai = pytest.importorskip("openai")


def embedding_config(base_url: str) -> str:
    return f"""\
providers:
  fake: {{type: litellm, api_base: '{base_url}', api_key: '${{FAKE_KEY}}', timeout: 10,
          retries: 0}}
models:
  chat: {{provider: fake, model: openai/gpt-4o-mini, cost: {{input: 1, output: 2}}}}
  small-embed:
    provider: fake
    model: openai/text-embedding-3-small
    capabilities: [embeddings]
    cost: {{input: 20, output: 0}}
  big-embed:
    provider: fake
    model: openai/text-embedding-3-large
    capabilities: [embeddings]
    cost: {{input: 130, output: 0}}
rules:
  - {{name: search, when: {{use_case: search}}, targets: [big-embed]}}
  - {{name: default, targets: [chat, small-embed]}}
settings: {{usage_db: ':memory:'}}
server:
  keys:
    - {{key: '${{ALICE_KEY}}', name: alice}}
    - {{key: '${{BOB_KEY}}', name: bob, models: [chat, small-embed]}}
"""


@pytest.fixture(scope="module")
def embed_server(
    fake_server: FakeProviderServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    config = tmp_path_factory.mktemp("embed") / "router.yaml"
    config.write_text(embedding_config(fake_server.base_url))
    with ServerProcess(config, "--no-watch") as server:
        yield server


@pytest.fixture
def client(embed_server, fake):
    with openai.OpenAI(base_url=embed_server.base_url, api_key=ALICE_KEY, max_retries=0) as c:
        yield c


def _post(server: ServerProcess, body: dict, key: str = ALICE_KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(server.base_url + "/embeddings", json=body, headers=headers, timeout=30)


def test_the_sdk_gets_one_vector_per_text_from_the_model_the_rules_chose(client, fake):
    raw = client.embeddings.with_raw_response.create(
        model="auto", input=["hello world", "good bye", "hello world"]
    )
    got = raw.parse()
    assert got.object == "list" and got.model == "small-embed"
    assert [d.index for d in got.data] == [0, 1, 2]
    assert all(d.object == "embedding" and len(d.embedding) == 8 for d in got.data)
    assert got.data[0].embedding == got.data[2].embedding != got.data[1].embedding
    assert (got.usage.prompt_tokens, got.usage.total_tokens) == (6, 6)
    assert raw.headers["x-router-model"] == "small-embed"
    assert raw.headers["x-router-rule"] == "default"
    assert float(raw.headers["x-router-cost-usd"]) == pytest.approx(6 * 20 / 1e6)
    sent = fake.last_request
    assert sent.path == "/v1/embeddings" and sent.body["model"] == "text-embedding-3-small"
    assert sent.body["input"] == ["hello world", "good bye", "hello world"]


def test_a_string_input_a_use_case_dimensions_and_a_pinned_model(client, fake):
    one = client.embeddings.create(
        model="auto", input="find me", dimensions=16, extra_body={"use_case": "search"}
    )
    assert one.model == "big-embed" and len(one.data) == 1 and len(one.data[0].embedding) == 16
    assert fake.last_request.body["dimensions"] == 16
    pinned = client.embeddings.create(model="small-embed", input="find me")
    assert pinned.model == "small-embed"


def test_base64_is_little_endian_float32_of_the_float_answer(embed_server, fake):
    as_float = _post(embed_server, {"model": "auto", "input": ["a b c"]})
    as_b64 = _post(embed_server, {"model": "auto", "input": ["a b c"], "encoding_format": "base64"})
    assert as_float.status_code == as_b64.status_code == 200
    floats = as_float.json()["data"][0]["embedding"]
    packed = base64.b64decode(as_b64.json()["data"][0]["embedding"])
    assert len(packed) == 4 * len(floats)
    decoded = struct.unpack(f"<{len(floats)}f", packed)
    assert decoded == pytest.approx(floats, rel=1e-6)


def test_errors_come_in_openai_shape(client, embed_server, fake):
    with pytest.raises(openai.NotFoundError) as nf:
        client.embeddings.create(model="no-such-model", input="x")
    assert nf.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as chat_model:
        client.embeddings.create(model="chat", input="x")
    assert "does not serve embeddings" in chat_model.value.body["message"]
    tokens = _post(embed_server, {"model": "auto", "input": [[1, 2, 3]]})
    assert tokens.status_code == 400
    assert tokens.json()["error"]["param"] == "input"
    assert set(tokens.json()["error"]) == {"message", "type", "param", "code"}
    bad_format = _post(embed_server, {"model": "auto", "input": "x", "encoding_format": "hex"})
    assert bad_format.status_code == 400
    assert _post(embed_server, {"model": "auto", "input": "x"}, key="wrong").status_code == 401
    # A key limited to some models names one; the rules could pick another.
    assert _post(embed_server, {"model": "auto", "input": "x"}, key=BOB_KEY).status_code == 403
    assert _post(embed_server, {"model": "small-embed", "input": "x"}, key=BOB_KEY).is_success
    fake.enqueue(server_error(500))
    with pytest.raises(openai.APIStatusError) as upstream:
        client.embeddings.create(model="auto", input="x")
    assert upstream.value.status_code == 502
    assert "small-embed" in upstream.value.body["message"]

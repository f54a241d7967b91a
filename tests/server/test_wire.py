"""OpenAI's wire format in process: request checks and the chunk bytes."""

from __future__ import annotations

import json

import pytest

from router.server.wire import ChunkWriter, WireError, parse_chat


@pytest.mark.parametrize("text", ["plain", 'quote " and \\ slash', "line\nbreak", "é 中 🦊", ""])
def test_a_text_chunk_is_the_whole_event_rendered(text: str) -> None:
    writer = ChunkWriter("m", include_usage=True)
    writer.text("first")
    fast = writer.text(text)
    assert fast == writer._event({"content": text})
    assert fast.startswith(b"data: ") and fast.endswith(b"\n\n")
    assert json.loads(fast[6:])["choices"][0]["delta"] == {"content": text}


def test_routing_hints_come_from_the_body_before_the_headers() -> None:
    body = {"model": "router/coding", "messages": [{"role": "user", "content": "x"}]}
    headers = {
        "x-router-use-case": "chat",
        "x-router-tags": "a, b",
        "x-router-metadata": '{"k": 1}',
    }
    chat = parse_chat(body, headers)
    assert chat.forced_rule == "coding" and chat.pinned_model is None
    assert chat.route_args["use_case"] == "chat"
    assert chat.route_args["tags"] == ["a", "b"]
    assert chat.route_args["metadata"] == {"k": 1}
    chat = parse_chat({**body, "model": "m", "use_case": "coding", "tags": ["z"]}, headers)
    assert chat.pinned_model == "m"
    assert (chat.route_args["use_case"], chat.route_args["tags"]) == ("coding", ["z"])


def test_a_client_cannot_name_the_key_its_spend_goes_to() -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "x"}], "key": "bob"}
    args = parse_chat({**body, "rule": "r", "seed": 3}, {}).route_args
    assert "key" not in args and "rule" not in args and args["seed"] == 3


def test_a_bad_metadata_header_names_itself() -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(WireError) as info:
        parse_chat(body, {"x-router-metadata": "{not json"})
    assert info.value.param == "metadata"

"""Raw HTTP against `router serve`: bad bodies, limits, slow and vanishing clients."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import time

import httpx
import pytest

from router.testing import reply, slow, slow_stream

CHAT = "/v1/chat/completions"


def _chat_body(**extra):
    return {"model": "auto", "messages": [{"role": "user", "content": "hi"}], **extra}


def _error(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert {"message", "type", "code", "param"} <= set(body["error"])
    return body["error"]


def test_malformed_json_is_a_400_in_openai_shape(open_server):
    got = httpx.post(
        open_server.url + CHAT,
        content=b'{"model": "auto", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert got.status_code == 400
    assert "not valid JSON" in _error(got)["message"]
    assert _error(got)["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model", "'model' is required"),
        ({"model": "auto", "messages": "hello"}, "messages", "non-empty list"),
        ({"model": "auto", "messages": [{"content": "x"}]}, "messages[0]", "'role'"),
        (_chat_body(stream="yes"), "stream", "true or false"),
        (_chat_body(max_tokens="ten"), "max_tokens", "positive integer"),
        (_chat_body(temperature=[1]), "temperature", "a number"),
        (_chat_body(tags=[1, 2]), "tags", "list of strings"),
        (_chat_body(metadata="x"), "metadata", "an object"),
        ([1, 2, 3], None, "JSON object"),
    ],
)
def test_wrong_types_say_which_field(open_server, body, param, words):
    got = httpx.post(open_server.url + CHAT, json=body)
    assert got.status_code == 400
    err = _error(got)
    assert err["param"] == param
    assert words in err["message"]


def test_a_huge_body_is_413_with_or_without_content_length(open_server):
    big = json.dumps(_chat_body(padding="x" * 200_000)).encode()
    got = httpx.post(open_server.url + CHAT, content=big)
    assert got.status_code == 413
    assert "max_body_bytes" in _error(got)["message"]

    def chunks():
        for _ in range(40):
            yield b"x" * 8192

    got = httpx.post(open_server.url + CHAT, content=chunks())  # chunked: no length
    assert got.status_code == 413


def test_unknown_paths_and_methods_are_openai_shaped(open_server):
    got = httpx.get(open_server.url + "/v1/nothing")
    assert got.status_code == 404 and "no such endpoint" in _error(got)["message"]
    got = httpx.get(open_server.url + CHAT)
    assert got.status_code == 405


def test_beyond_max_concurrent_is_503_with_retry_after(open_server, fake):
    fake.enqueue(*[slow(1.5) for _ in range(4)])
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(httpx.post, open_server.url + CHAT, json=_chat_body(), timeout=30)
            for _ in range(8)
        ]
        codes = sorted(f.result().status_code for f in futures)
        refused = [f.result() for f in futures if f.result().status_code == 503]
    assert codes.count(200) >= 1 and refused, codes
    assert set(codes) <= {200, 503}
    assert refused[0].headers["retry-after"] == "1"
    assert "max_concurrent" in _error(refused[0])["message"]
    # The server is not wedged: the next request is served.
    assert httpx.post(open_server.url + CHAT, json=_chat_body(), timeout=30).status_code == 200


def test_a_slow_client_does_not_hold_up_the_others(open_server, fake):
    body = json.dumps(_chat_body()).encode()
    head = (
        f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", open_server.port), timeout=30) as slow_sock:
        slow_sock.sendall(head + body[:10])  # and then nothing, for a while
        for _ in range(3):
            got = httpx.post(open_server.url + CHAT, json=_chat_body(), timeout=30)
            assert got.status_code == 200
        slow_sock.sendall(body[10:])
        answer = slow_sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200")


def _stream_until_first_chunk(port: int, body: dict) -> socket.socket:
    raw = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(
        (
            f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(raw)}\r\n\r\n"
        ).encode()
        + raw
    )
    got = b""
    while b"data: " not in got:
        piece = sock.recv(65536)
        assert piece, got
        got += piece
    assert got.startswith(b"HTTP/1.1 200")
    return sock


def test_a_client_gone_mid_stream_leaves_the_server_serving(open_server, fake):
    fake.enqueue(reply(" ".join(["word"] * 2000)))
    sock = _stream_until_first_chunk(open_server.port, _chat_body(stream=True))
    sock.close()
    for _ in range(3):
        got = httpx.post(open_server.url + CHAT, json=_chat_body(), timeout=30)
        assert got.status_code == 200
    status = httpx.get(open_server.url + "/v1/router/status").json()
    assert status["server"]["in_flight"] == 1  # only the status request itself


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_gone_before_the_answer_cancels_the_upstream_call(open_server, fake, stream):
    fake.enqueue(slow(3.0))
    raw = json.dumps(_chat_body(stream=stream)).encode()
    with socket.create_connection(("127.0.0.1", open_server.port), timeout=30) as sock:
        sock.sendall(
            (
                f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(raw)}\r\n\r\n"
            ).encode()
            + raw
        )
        deadline = time.monotonic() + 10
        while not fake.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fake.requests, "the upstream call never started"
    # The server notices, cancels the routed call and frees its slot before the
    # 3 s upstream delay is over; bounded poll, no wall-clock assertion on the result.
    in_flight = None
    for _ in range(100):
        in_flight = httpx.get(open_server.url + "/v1/router/status").json()["server"]["in_flight"]
        if in_flight == 1:
            break
        time.sleep(0.02)
    assert in_flight == 1
    state = httpx.get(open_server.url + "/v1/router/status").json()["state"]["models"]
    assert state["fast"]["in_flight"] == 0


def test_a_client_gone_mid_stream_closes_the_upstream_connection(open_server, fake):
    """The backend stops generating: the fake, between pieces, sees the router go."""
    fake.enqueue(slow_stream(0.25, " ".join(f"w{i}" for i in range(40))))
    sock = _stream_until_first_chunk(open_server.port, _chat_body(stream=True))
    sock.close()
    assert fake.wait_for_disconnects(1, 10.0)
    fake.enqueue(slow(5.0))  # gone before the first byte: the waiting call is cut too
    raw = json.dumps(_chat_body()).encode()
    with socket.create_connection(("127.0.0.1", open_server.port), timeout=30) as conn:
        conn.sendall(
            (
                f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(raw)}\r\n\r\n"
            ).encode()
            + raw
        )
        deadline = time.monotonic() + 10
        while len(fake.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert fake.wait_for_disconnects(2, 10.0)

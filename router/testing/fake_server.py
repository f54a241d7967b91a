"""A fake LLM provider on 127.0.0.1 that speaks OpenAI, Anthropic and Ollama over real HTTP.

    with FakeProviderServer(reply="hi") as fake:
        fake.enqueue(rate_limited(retry_after=2), reply("second try"))
        ...  # point an adapter at fake.base_url (OpenAI) or fake.url (Anthropic, Ollama)
        assert fake.requests[0].headers["authorization"] == "Bearer sk-..."

Endpoints: `POST /v1/chat/completions`, `POST /v1/embeddings`, `GET /v1/models`
(also without `/v1`), `POST /v1/messages`, `POST /v1/messages/count_tokens`,
`POST /api/chat`, `POST /api/generate`, `GET /api/tags`, `POST /api/pull` (a progress
stream), `DELETE /api/delete`,
`POST /api/show`. Every reply goes out in one write on a TCP_NODELAY socket with
HTTP/1.1 keep-alive and Content-Length (streams: chunked encoding), so a client
never waits on delayed ACKs and timings measure the client, not the fake.

Each completion (or embeddings) request takes the next scripted `Outcome` from the queue; when the
queue is empty, random faults (if `fault_rate` > 0, seeded) or the default reply.
"""

from __future__ import annotations

import contextlib
import json
import random
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from router.testing import _wire
from router.testing.outcomes import FAULTS, Outcome, slow

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    529: "Overloaded",
}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as it came over the wire (header names lower-cased)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any  # parsed JSON, or None
    raw: bytes = b""
    peer: tuple[str, int] = ("", 0)  # the client's address: one per TCP connection


class FakeProviderServer:
    """See the module docstring. Thread-safe; start()/stop() or use as a context manager."""

    def __init__(
        self,
        *,
        reply: str = "Hello from the fake provider.",
        input_tokens: int = 10,
        output_tokens: int | None = None,  # None: one per word of the reply
        models: Iterable[str] = ("gpt-4o-mini", "llama3:latest"),
        # Extra fields per model in /v1/models, e.g. OpenRouter's context_length, pricing.
        model_details: Mapping[str, Mapping[str, Any]] | None = None,
        fault_rate: float = 0.0,
        fault_kinds: Iterable[str] = ("rate_limited", "server_error", "disconnect"),
        fault_delay: float = 0.0,  # also sleep this long before a faulty reply
        stream_usage: bool = True,  # False: OpenAI streams never send a usage chunk
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        unknown = set(fault_kinds) - set(FAULTS) - {"slow"}
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {sorted(FAULTS)}")
        self.reply_text = reply
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.models = tuple(models)
        self.model_details = dict(model_details or {})
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        self.fault_delay = fault_delay
        self.stream_usage = stream_usage
        self._random = random.Random(seed)
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._queue: deque[Outcome] = deque()
        self._requests: list[RecordedRequest] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._disconnects = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeProviderServer:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-provider:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping on a delay
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT: the api_base for Anthropic and Ollama clients."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible api_base (ends in /v1)."""
        return self.url + "/v1"

    # -- scripting -------------------------------------------------------------------------

    def enqueue(self, *outcomes: Outcome) -> None:
        """Answer the next completion requests with these outcomes, in order."""
        with self._lock:
            self._queue.extend(outcomes)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("no request recorded yet")
            return self._requests[-1]

    @property
    def disconnects(self) -> int:
        """Completion requests whose client closed the connection while the reply was
        delayed (a timeout, or a hedge's losing call being cancelled)."""
        with self._lock:
            return self._disconnects

    @property
    def max_in_flight(self) -> int:
        """The most completion requests served at the same time since the last reset."""
        with self._lock:
            return self._max_in_flight

    def reset(self) -> None:
        """Forget recorded requests, scripted outcomes and the in-flight high mark."""
        with self._lock:
            self._queue.clear()
            self._requests.clear()
            self._max_in_flight = self._in_flight
            self._disconnects = 0

    # -- used by the handler ---------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _hung_up(self) -> None:
        with self._lock:
            self._disconnects += 1

    def _enter(self, delta: int) -> None:
        with self._lock:
            self._in_flight += delta
            self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _next_outcome(self) -> Outcome:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if self.fault_rate > 0 and self._random.random() < self.fault_rate:
                kind = self._random.choice(self.fault_kinds)
                if kind == "slow":
                    return slow(self.fault_delay or 1.0)
                return replace(FAULTS[kind], delay=self.fault_delay)
        return Outcome()

    def _answer(self, outcome: Outcome, model: str, include_usage: bool) -> _wire.Answer:
        text = self.reply_text if outcome.text is None else outcome.text
        if outcome.usage is not None:
            n_in, n_out = outcome.usage
        else:
            n_in = self.input_tokens
            n_out = self.output_tokens if self.output_tokens is not None else len(text.split())
        return _wire.Answer(model, text, n_in, n_out, outcome.tool_calls, include_usage)


class _Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fake: FakeProviderServer) -> None:
        self.fake = fake
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conns_lock:
            (self._conns.add if alive else self._conns.discard)(conn)

    def close_connections(self) -> None:
        """Drop idle keep-alive connections so their threads end with the server."""
        with self._conns_lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


# (method, path without a leading /v1) -> handler method name
_ROUTES: Mapping[tuple[str, str], str] = {
    ("POST", "/chat/completions"): "_openai",
    ("GET", "/models"): "_openai_models",
    ("POST", "/embeddings"): "_openai_embeddings",
    ("POST", "/messages"): "_anthropic",
    ("POST", "/messages/count_tokens"): "_anthropic_count",
    ("POST", "/api/chat"): "_ollama_chat",
    ("POST", "/api/generate"): "_ollama_generate",
    ("GET", "/api/tags"): "_ollama_tags",
    ("POST", "/api/show"): "_ollama_show",
    ("POST", "/api/pull"): "_ollama_pull",
    ("DELETE", "/api/delete"): "_ollama_delete",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Small writes must not wait for the peer's delayed ACK (Nagle's algorithm).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests scan stderr for leaked keys

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- plumbing --------------------------------------------------------------------------

    def _dispatch(self) -> None:
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = urlsplit(self.path).path.rstrip("/") or "/"
        headers = {k.lower(): v for k, v in self.headers.items()}
        peer = (str(self.client_address[0]), int(self.client_address[1]))
        self.server.fake._record(RecordedRequest(self.command, path, headers, body, raw, peer))
        key = path[3:] if path.startswith("/v1/") else path
        handler = _ROUTES.get((self.command, key))
        if handler is None:
            self._send_json(404, {"error": {"message": f"no route {self.command} {path}"}})
            return
        try:
            getattr(self, handler)(body if isinstance(body, dict) else {})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _head(self, status: int, headers: Mapping[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if self.close_connection:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send_json(self, status: int, data: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(data, separators=(",", ":")).encode()
        head = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        self.wfile.write(self._head(status, {**head, **(headers or {})}) + body)  # one write

    def _sent_key(self) -> str:
        auth = self.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ").strip() or self.headers.get("x-api-key", "")

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- completions -----------------------------------------------------------------------

    def _complete(self, dialect: _wire.Dialect, flavour: str, body: dict[str, Any]) -> None:
        fake = self.server.fake
        fake._enter(1)
        try:
            self._complete_one(fake, dialect, flavour, body)
        finally:
            fake._enter(-1)

    def _wait(self, fake: FakeProviderServer, seconds: float) -> bool:
        """Sleep through an outcome's delay; True when the server stops or the client
        hangs up first (counted in `fake.disconnects`: what a cancelled call looks like)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if fake._stopping.wait(min(left, _POLL)):
                return True
            if _hung_up(self.connection):
                fake._hung_up()
                return True
        return False

    def _complete_one(
        self, fake: FakeProviderServer, dialect: _wire.Dialect, flavour: str, body: dict[str, Any]
    ) -> None:
        outcome = fake._next_outcome()
        if outcome.delay and self._wait(fake, outcome.delay):
            self._drop()
            return
        stream = bool(body.get("stream", flavour == "ollama"))  # Ollama streams by default
        if outcome.disconnect_after is not None and (not stream or outcome.disconnect_after == 0):
            self._drop()
            return
        if outcome.status >= 400:
            message = outcome.message or _wire.CONTEXT_MESSAGES[flavour]
            if "{key}" in message:
                message = message.replace("{key}", self._sent_key())
            error = dialect.error(outcome.status, message, outcome.kind)
            self._send_json(outcome.status, error, outcome.headers)
            return
        options = body.get("stream_options") or {}
        include_usage = not stream or flavour != "openai" or bool(options.get("include_usage"))
        include_usage = include_usage and (not stream or fake.stream_usage)
        answer = fake._answer(outcome, str(body.get("model", "fake-model")), include_usage)
        if not stream:
            self._send_json(200, dialect.reply(answer), outcome.headers)
            return
        pieces = dialect.stream(answer)
        cut = outcome.disconnect_after
        if cut is not None:
            kept: list[tuple[bytes, bool]] = []
            n_text = 0
            for piece, is_text in pieces:
                if n_text >= cut:
                    break
                kept.append((piece, is_text))
                n_text += is_text
            pieces = kept
        head = {
            "Content-Type": dialect.stream_type,
            "Cache-Control": "no-cache",
            "Transfer-Encoding": "chunked",
            **outcome.headers,
        }
        out = [self._head(200, head)]
        out += [b"%x\r\n%s\r\n" % (len(data), data) for data, _ in pieces]
        if cut is None:
            out.append(b"0\r\n\r\n")
        self.wfile.write(b"".join(out))
        if cut is not None:
            self._drop()

    def _openai(self, body: dict[str, Any]) -> None:
        self._complete(_OPENAI, "openai", body)

    def _anthropic(self, body: dict[str, Any]) -> None:
        self._complete(_ANTHROPIC, "anthropic", body)

    def _anthropic_count(self, body: dict[str, Any]) -> None:
        """Anthropic's count_tokens: one token per word plus 3 per message, as a tokenizer would."""
        messages = body.get("messages") or []
        words = sum(len(str(m.get("content", "")).split()) for m in messages)
        system = len(str(body.get("system", "")).split())
        self._send_json(200, {"input_tokens": words + system + 3 * len(messages)})

    def _ollama_chat(self, body: dict[str, Any]) -> None:
        self._complete(_OLLAMA_CHAT, "ollama", body)

    def _ollama_generate(self, body: dict[str, Any]) -> None:
        self._complete(_OLLAMA_GENERATE, "ollama", body)

    def _openai_embeddings(self, body: dict[str, Any]) -> None:
        """Deterministic vectors (`dimensions` long, default 8) for each input text."""
        fake = self.server.fake
        outcome = fake._next_outcome()
        if outcome.delay and fake._stopping.wait(outcome.delay):
            self._drop()
            return
        if outcome.disconnect_after is not None:
            self._drop()
            return
        if outcome.status >= 400:
            message = (outcome.message or _wire.CONTEXT_MESSAGES["openai"]).replace(
                "{key}", self._sent_key()
            )
            error = _OPENAI.error(outcome.status, message, outcome.kind)
            self._send_json(outcome.status, error, outcome.headers)
            return
        raw = body.get("input", "")
        texts = [raw] if isinstance(raw, str) else [str(t) for t in raw]
        size = int(body.get("dimensions") or 8)
        data = [
            {"object": "embedding", "index": i, "embedding": _wire.embedding(t, size)}
            for i, t in enumerate(texts)
        ]
        n = sum(len(t.split()) for t in texts)
        reply = {
            "object": "list",
            "data": data,
            "model": str(body.get("model", "fake-embedding")),
            "usage": {"prompt_tokens": n, "total_tokens": n},
        }
        self._send_json(200, reply, outcome.headers)

    # -- listings --------------------------------------------------------------------------

    def _openai_models(self, body: dict[str, Any]) -> None:
        fake = self.server.fake
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
            | dict(fake.model_details.get(m, {}))
            for m in fake.models
        ]
        self._send_json(200, {"object": "list", "data": data})

    def _ollama_tags(self, body: dict[str, Any]) -> None:
        models = [
            {
                "name": m,
                "model": m,
                "modified_at": "2024-01-01T00:00:00Z",
                "size": 1,
                "digest": "0" * 64,
                "details": {"format": "gguf", "family": "fake", "parameter_size": "1B"},
            }
            for m in self.server.fake.models
        ]
        self._send_json(200, {"models": models})

    def _ollama_pull(self, body: dict[str, Any]) -> None:
        """Ollama's progress stream; a name starting with "missing" is not in the library."""
        fake = self.server.fake
        name = str(body.get("model") or body.get("name") or "")
        if not name or name.startswith("missing"):
            error = {"error": "pull model manifest: file does not exist"}
            self._send_json(500 if name else 400, error)
            return
        total = 3000
        steps: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        digest = "sha256:" + "ab" * 32
        steps += [
            {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total, "completed": c}
            for c in (0, 1000, 2000, 3000)
        ]
        steps += [{"status": s} for s in ("verifying sha256 digest", "writing manifest")]
        steps.append({"status": "success"})
        with fake._lock:
            if name not in fake.models:
                fake.models = (*fake.models, name)
        head = {"Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked"}
        out = [self._head(200, head)]
        for step in steps:
            data = _wire.ndjson(step)
            out.append(b"%x\r\n%s\r\n" % (len(data), data))
        out.append(b"0\r\n\r\n")
        self.wfile.write(b"".join(out))

    def _ollama_delete(self, body: dict[str, Any]) -> None:
        fake = self.server.fake
        name = str(body.get("model") or body.get("name") or "")
        with fake._lock:
            known = name in fake.models
            fake.models = tuple(m for m in fake.models if m != name)
        if not known:
            self._send_json(404, {"error": f"model '{name}' not found"})
            return
        self._send_json(200, {})

    def _ollama_show(self, body: dict[str, Any]) -> None:
        info = {"general.architecture": "fake", "fake.context_length": 8192}
        self._send_json(200, {"template": "", "model_info": info, "capabilities": ["completion"]})


# How often a delayed reply looks whether its client is still there.
_POLL = 0.02


def _hung_up(conn: socket.socket) -> bool:
    """The client closed its end: the socket reads as ended (a request body was read
    in full before, and HTTP/1.1 clients send nothing more while they wait)."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


_OPENAI = _wire.OpenAI()
_ANTHROPIC = _wire.Anthropic()
_OLLAMA_CHAT = _wire.Ollama()
_OLLAMA_GENERATE = _wire.Ollama(generate=True)


def main(argv: list[str] | None = None) -> None:
    """`python -m router.testing --port 8000`: serve until interrupted (Ctrl-C)."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--reply", default="Hello from the fake provider.")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    fake = FakeProviderServer(
        reply=args.reply, port=args.port, fault_rate=args.fault_rate, seed=args.seed
    )
    with fake:
        print(
            f"fake provider on {fake.url} (OpenAI base {fake.base_url}); Ctrl-C stops", flush=True
        )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()

"""The request log: one JSON line per request, in a file rotated by size.

    settings:
      request_log: logs/requests.jsonl            # or {path, max_bytes, backups, log_text}

Each line holds what replay and people need to see a request again without its
words: when, the request's features (use case, tags, metadata keys, estimated
tokens, needs, numeric params), the decision (rule, model, candidates, rejected
models with the kind of reason), the attempts (model, error kind, duration), usage,
cost, latency, outcome, cache hit, config version and sha. Prompt and answer text
(and metadata values) are written only with `log_text: true`. Keys never appear:
nothing here reads a provider's settings, and errors are written as kinds.

The line is made and written by a writer thread: the request only hands its event
over (a queue put), so the log costs the request path next to nothing. `flush()`
waits for what was handed over; `close()` flushes. The thread starts with the first
request (and again in a forked worker, where threads do not follow).

Rotation: past `max_bytes` the file becomes `path.1` (`path.1` becomes `path.2`, ...,
`backups` kept). Lines are appended with one `write` on an O_APPEND descriptor, so
processes sharing a file do not interleave within a line; each rotates on its own
count, so with several workers a file may exceed `max_bytes` by their in-flight lines.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from router.config.model import RequestLogSettings
from router.observe.events import RequestEnded
from router.types import Decision, Request

LOG_VERSION = 1
log = logging.getLogger("router.observe")

# Until every reason carries a kind (engine Rejection), the leading words name it.
_REASON_KINDS = (
    ("context", "context"),
    ("missing capability", "capability"),
    ("circuit", "circuit"),
    ("budget", "budget"),
    ("rate limit", "rate_limit"),
    ("estimated cost", "cost"),
    ("held", "held"),
)


def rejection_kind(why: object) -> str:
    """The kind of a rejection: `Rejection.kind` where the engine gives one."""
    kind = getattr(why, "kind", None)
    if kind is not None:
        return str(getattr(kind, "value", kind))
    text = str(why).lower()
    if text.startswith("rule "):
        text = text.split(": ", 1)[-1]
    for prefix, name in _REASON_KINDS:
        if text.startswith(prefix):
            return name
    if "not set" in text or "disabled" in text:
        return "disabled"
    return "other"


def _scalar_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Numbers and flags only: a `stop` string or a `user` id is text."""
    return {
        k: v
        for k, v in params.items()
        if isinstance(v, (int, float, bool)) and not isinstance(v, str)
    }


def request_features(request: Request) -> dict[str, Any]:
    return {
        "use_case": request.use_case,
        "tags": sorted(request.tags),
        "metadata_keys": sorted(str(k) for k in request.metadata),
        "tokens": request.tokens,
        "max_tokens": request.max_tokens,
        "needs": sorted(request.needs),
        "params": _scalar_params(request.params),
        "tools": len(request.tools) if request.tools else 0,
        "stream": request.stream,
    }


def decision_fields(decision: Decision | None) -> dict[str, Any]:
    if decision is None:
        return {"rule": None, "model": None, "provider": None}
    return {
        "use_case_detected": decision.use_case,
        "rule": decision.rule,
        "model": decision.model,
        "provider": decision.provider,
        "candidates": list(decision.candidates),
        "rejected": {m: rejection_kind(why) for m, why in decision.rejected.items()},
        "rules_matched": [t.rule for t in decision.rules if t.matched],
    }


def log_record(event: RequestEnded, *, log_text: bool = False) -> dict[str, Any]:
    """The JSON object of one request's line."""
    rec: dict[str, Any] = {
        "v": LOG_VERSION,
        "ts": datetime.fromtimestamp(event.started_at, tz=timezone.utc).isoformat(
            timespec="milliseconds"
        ),
        **request_features(event.request),
        **decision_fields(event.decision),
    }
    result = event.result
    error = event.error
    attempts = result.attempts if result is not None else getattr(error, "attempts", ())
    rec["attempts"] = [
        {
            "model": a.model,
            "provider": a.provider,
            "error": a.error,
            "duration_ms": round(a.duration_s * 1000, 3),
        }
        for a in attempts
    ]
    if result is not None:
        rec["served_rule"] = result.rule
        rec["served_model"] = result.model
        rec["usage"] = {
            "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens,
        }
        rec["cost_usd"] = result.cost_usd
        rec["finish_reason"] = result.finish_reason
    else:
        rec["usage"] = None
        rec["cost_usd"] = 0.0
    rec["latency_ms"] = round(event.duration_s * 1000, 3)
    rec["ttft_ms"] = None if event.ttft_s is None else round(event.ttft_s * 1000, 3)
    rec["outcome"] = event.outcome
    rec["error"] = None if error is None else type(error).__name__
    rec["cache"] = event.cache
    rec["config_version"] = event.config_version
    rec["config_sha"] = event.config_sha
    if log_text:
        rec["messages"] = list(event.request.messages)
        rec["metadata"] = dict(event.request.metadata)
        rec["text"] = result.text if result is not None else None
    return rec


class RotatingWriter:
    """Appends lines to a file; past `max_bytes` it rotates to path.1 ... path.N."""

    def __init__(self, path: str | os.PathLike[str], max_bytes: int, backups: int) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._fd = -1  # opened by the first line: `router validate` writes no file
        self._size = 0
        self._closed = False

    def _open(self) -> None:
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size

    def write(self, line: bytes) -> None:
        with self._lock:
            if self._closed:
                raise ValueError(f"request log {self.path} is closed")
            if self._fd < 0:
                self._open()
            if self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            os.write(self._fd, line)
            self._size += len(line)

    def _rotate(self) -> None:
        os.close(self._fd)
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                src = f"{self.path}.{i}"
                if os.path.exists(src):
                    os.replace(src, f"{self.path}.{i + 1}")
            os.replace(self.path, f"{self.path}.1")
        else:
            os.truncate(self.path, 0)
        self._open()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class RequestLog:
    """An `Observer` that writes each request's line; `settings.request_log` builds one."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = 100 * 1024 * 1024,
        backups: int = 5,
        log_text: bool = False,
    ) -> None:
        self.log_text = log_text
        self._writer = RotatingWriter(path, max_bytes, backups)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_settings(cls, s: RequestLogSettings, base_dir: str | None = None) -> RequestLog:
        path = os.path.expanduser(s.path)
        if not os.path.isabs(path) and base_dir:
            path = os.path.join(base_dir, path)
        return cls(path, max_bytes=s.max_bytes, backups=s.backups, log_text=s.log_text)

    @property
    def path(self) -> str:
        return self._writer.path

    def request_ended(self, event: RequestEnded) -> None:
        if self._thread is None or self._pid != os.getpid():
            self._start()
        self._queue.put(event)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            if self._pid and self._pid != os.getpid():
                self._queue = queue.SimpleQueue()  # a forked copy: the parent's is not ours
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name=f"router-request-log:{self.path}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        q = self._queue
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()  # a flush: every line before it is written
                continue
            try:
                self.write(item)
            except Exception as exc:  # a full disk must not kill the writer
                log.error("request log %s: line not written: %s", self.path, exc)

    def write(self, event: RequestEnded) -> None:
        """Make and write one request's line now, in this thread."""
        rec = log_record(event, log_text=self.log_text)
        line = json.dumps(rec, separators=(",", ":"), ensure_ascii=False, default=str) + "\n"
        self._writer.write(line.encode("utf-8"))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every line handed over so far is written; False on timeout."""
        thread = self._thread
        if thread is None or not thread.is_alive() or self._pid != os.getpid():
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def reloaded(self, event: object) -> None:
        pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            self._queue.put(None)
            thread.join(timeout=10.0)
        self._writer.close()

    def __repr__(self) -> str:
        return f"<RequestLog {self.path!r} log_text={self.log_text}>"


__all__ = ["LOG_VERSION", "RequestLog", "RotatingWriter", "log_record", "rejection_kind"]

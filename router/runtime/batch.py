"""`Router.batch()`: many requests through `route()`, a few at a time, into a JSONL file.

Input, one JSON value a line: a string (the prompt) or an object with `prompt` or
`messages` and any of route()'s keywords (`use_case`, `tags`, `metadata`, `tools`,
`response_format`, `max_tokens`, `temperature`, ...) plus an `id` that is copied to
the output. Output, one line per input line, in input order:

    {"line": 1, "id": ..., "ok": true, "text": ..., "model": ..., "usage": {...}, ...}
    {"line": 2, "id": ..., "ok": false, "error": {"kind": "no_route", "message": ...}}

Each request goes through `route()`, so budgets, rate limits, breakers and fallbacks
apply as they do to any other request. At most `concurrency` run at once.

The output file is only ever replaced whole (a temporary file renamed over it), at
most every `checkpoint_s` seconds and at the end, so an interrupt (Ctrl-C, a kill)
leaves the last complete version: valid JSON lines, in order, none cut short. A
rerun with the same output reads it and skips every line already answered for the
same input text (errors are tried again): a batch resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO, Any

from router.errors import RouterError

Clock = Callable[[], float]
Record = dict[str, Any]
RouteFn = Callable[..., Any]

_RESERVED = frozenset({"stream", "line", "ok"})


def input_digest(raw: str) -> str:
    return hashlib.sha256(raw.strip().encode()).hexdigest()[:16]


def parse_line(raw: str) -> tuple[Any, dict[str, Any]]:
    """An input line as (id, route() keywords); ValueError says what is wrong."""
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if isinstance(value, str):
        return None, {"prompt": value}
    if not isinstance(value, Mapping):
        raise ValueError("expected a JSON string (the prompt) or an object")
    kwargs = dict(value)
    ident = kwargs.pop("id", None)
    bad = sorted(_RESERVED & set(kwargs))
    if bad:
        raise ValueError(f"key(s) {', '.join(bad)} cannot be set per line")
    if ("prompt" in kwargs) == ("messages" in kwargs):
        raise ValueError("an object needs 'prompt' or 'messages' (one of them)")
    return ident, kwargs


def result_record(result: Any) -> Record:
    return {
        "ok": True,
        "text": result.text,
        "model": result.model,
        "provider": result.provider,
        "rule": result.rule,
        "usage": {
            "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens,
        },
        "cost_usd": result.cost_usd,
        "latency_s": round(result.latency_s, 4),
        "finish_reason": result.finish_reason,
    }


def error_record(exc: BaseException) -> Record:
    kind = getattr(exc, "kind", None) or {
        "NoRouteError": "no_route",
        "BudgetExceeded": "budget_exceeded",
        "ValueError": "bad_input",
    }.get(type(exc).__name__, "error")
    return {"ok": False, "error": {"kind": kind, "message": str(exc)}}


class BatchOutput:
    """The output file: records by line, written whole and atomically."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None
        self.records: dict[int, Record] = {}
        self._lock = threading.Lock()
        self._dirty = False

    def resume(self, digests: Mapping[int, str]) -> set[int]:
        """Read an earlier run's output; the lines it answered for the same input."""
        if self.path is None or not self.path.exists():
            return set()
        done: set[int] = set()
        for raw in self.path.read_text("utf-8").splitlines():
            try:
                rec = json.loads(raw)
                line = int(rec["line"])
            except (ValueError, KeyError, TypeError):
                continue  # not ours, or cut short: that line is done again
            if rec.get("ok") and rec.get("input_sha") == digests.get(line):
                self.records[line] = rec
                done.add(line)
        return done

    def add(self, line: int, record: Record) -> None:
        with self._lock:
            self.records[line] = record
            self._dirty = True

    def write(self) -> None:
        """Replace the file with every record so far, in line order (atomic rename)."""
        if self.path is None:
            return
        with self._lock:
            if not self._dirty and self.path.exists():
                return
            text = "".join(
                json.dumps(self.records[n], ensure_ascii=False) + "\n" for n in sorted(self.records)
            )
            self._dirty = False
        folder = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class Progress:
    """`37/100 [#######.............] 3.2/s ETA 0:20 (2 failed)`, redrawn on a TTY only."""

    def __init__(
        self, total: int, skipped: int, stream: IO[str] | None = None, clock: Clock = time.monotonic
    ) -> None:
        self.total = total
        self.done = skipped
        self.skipped = skipped
        self.failed = 0
        self.stream = stream
        self.clock = clock
        self.started = clock()
        self._lock = threading.Lock()

    def line(self, width: int = 24) -> str:
        ran = self.done - self.skipped
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = ran / elapsed
        left = self.total - self.done
        eta = "-" if rate <= 0 else _clock_text(left / rate)
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        failed = f" ({self.failed} failed)" if self.failed else ""
        return f"{self.done}/{self.total} [{bar}] {rate:.1f}/s ETA {eta}{failed}"

    def step(self, ok: bool) -> None:
        with self._lock:
            self.done += 1
            self.failed += not ok
            if self.stream is not None:
                self.stream.write("\r" + self.line())
                self.stream.flush()

    def finish(self) -> None:
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()


def _clock_text(seconds: float) -> str:
    s = int(seconds + 0.5)
    return (
        f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


def read_lines(source: str | os.PathLike[str] | Iterable[Any]) -> list[str]:
    """Input lines as JSON text; blank lines are skipped but keep their numbers."""
    if isinstance(source, (str, os.PathLike)):
        try:
            return Path(source).read_text("utf-8").splitlines()
        except FileNotFoundError:
            raise RouterError(f"{source}: no such file") from None
    return [
        item if isinstance(item, str) and _is_json(item) else json.dumps(item) for item in source
    ]


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def run_batch(
    route: RouteFn,
    lines: list[str],
    output: BatchOutput,
    *,
    concurrency: int = 4,
    progress_stream: IO[str] | None = None,
    checkpoint_s: float = 1.0,
    clock: Clock = time.monotonic,
) -> list[Record]:
    """Route every line not done yet; records in line order (1-based `line`)."""
    if concurrency < 1:
        raise RouterError(f"concurrency must be at least 1 (got {concurrency})")
    work = {n: raw for n, raw in enumerate(lines, 1) if raw.strip()}
    digests = {n: input_digest(raw) for n, raw in work.items()}
    done = output.resume(digests)
    todo = [n for n in work if n not in done]
    progress = Progress(len(work), len(work) - len(todo), progress_stream, clock)

    def one(n: int) -> Record:
        head: Record = {"line": n, "input_sha": digests[n]}
        try:
            ident, kwargs = parse_line(work[n])
            head["id"] = ident
            prompt = kwargs.pop("prompt", None)
            return {**head, **result_record(route(prompt, **kwargs))}
        except (RouterError, ValueError, TypeError) as exc:
            return {**head, **error_record(exc)}

    pending: set[Future[Record]] = set()
    queue = iter(todo)
    last_write = clock()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="batch") as pool:
        try:
            while True:
                while len(pending) < concurrency and (n := next(queue, None)) is not None:
                    pending.add(pool.submit(one, n))
                if not pending:
                    break
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    rec = fut.result()
                    output.add(rec["line"], rec)
                    progress.step(rec["ok"])
                if clock() - last_write >= checkpoint_s:
                    output.write()
                    last_write = clock()
        except BaseException:
            # Ctrl-C: nothing new starts; what is in flight finishes and is kept.
            for fut in pending:
                fut.cancel()
            for fut in pending:
                if not fut.cancelled():
                    try:
                        rec = fut.result()
                    except BaseException:  # a second Ctrl-C: keep what we have
                        break
                    output.add(rec["line"], rec)
            output.write()
            progress.finish()
            raise
    output.write()
    progress.finish()
    return [output.records[n] for n in sorted(output.records)]


__all__ = [
    "BatchOutput",
    "Progress",
    "input_digest",
    "parse_line",
    "read_lines",
    "run_batch",
]

"""The last requests in memory, and the figures an operator looks at first.

    recent = router.add_observer(RecentRequests(keep_text=lambda: False))
    recent.records(rule="coding")                     # newest first
    recent.overview(minutes=30)                       # requests/min, p50/p99, rates

The web console (`/ui`) reads these; the request log is for keeping, this is for
looking: a bounded ring (`capacity` records), so memory stays flat however long the
server runs, and nothing is read from disk per page view. Each worker process keeps
its own ring: with several workers a page shows the requests of the worker that
served it.

Prompt and answer text are kept only while `keep_text()` says so (the console ties
it to the request log's `log_text`), and never a key: `Request.key` is a key's name.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from router.observe.events import RequestEnded
from router.types import Record

if TYPE_CHECKING:
    from router.runtime.reload.changes import ReloadEvent

Clock = Callable[[], float]
TEXT_LIMIT = 4000  # characters of prompt or answer kept per record


@dataclass(frozen=True, slots=True, eq=False)
class TriedModel(Record):
    """One failed try before the answer (or before giving up)."""

    model: str
    provider: str
    error: str  # the error's kind: timeout, rate_limited, unavailable, ...
    duration_ms: float


@dataclass(frozen=True, slots=True, eq=False)
class RequestSummary(Record):
    """One request as the console lists it."""

    id: int  # increasing in this process: a page asks for what is newer than it saw
    at: float  # time.time() when route() was called
    use_case: str | None
    rule: str | None
    model: str | None  # the model that answered, else the one the decision chose
    provider: str | None
    outcome: str  # one of observe.events.OUTCOMES
    tried: tuple[TriedModel, ...]
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None: the price is unknown
    latency_ms: float
    cache: str | None  # "hit" | "miss" | None (the cache did not apply)
    key: str | None  # the API key's name, never the key
    error: str | None  # the error's class name when it failed
    prompt: str | None = None  # only while text is kept
    answer: str | None = None

    @property
    def fallback(self) -> bool:
        """Answered, but not by the first model tried."""
        return self.outcome == "ok" and bool(self.tried)


@dataclass(frozen=True, slots=True, eq=False)
class MinuteStats(Record):
    """One bucket of the overview's charts."""

    start: float  # epoch seconds, the bucket's start
    requests: int
    errors: int
    fallbacks: int
    cache_hits: int
    cache_lookups: int
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True, slots=True, eq=False)
class TrafficOverview(Record):
    """Headline figures over the last `window_s` seconds, and the buckets to chart."""

    window_s: float
    requests: int
    requests_per_min: float
    p50_ms: float | None
    p99_ms: float | None
    error_rate: float | None  # of requests; None with no request
    fallback_rate: float | None
    cache_hit_rate: float | None  # of cache lookups; None when the cache never applied
    buckets: tuple[MinuteStats, ...]
    bucket_s: float


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile (q in 0..100) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _summarise(event: RequestEnded, seq: int, keep_text: bool) -> RequestSummary:
    result, decision, error = event.result, event.decision, event.error
    attempts = result.attempts if result is not None else getattr(error, "attempts", ())
    tried = tuple(
        TriedModel(a.model, a.provider, a.error, round(a.duration_s * 1000, 3)) for a in attempts
    )
    model = result.model if result is not None else (decision.model if decision else None)
    provider = result.provider if result is not None else (decision.provider if decision else None)
    rule = (result.rule if result is not None else None) or (decision.rule if decision else None)
    prompt = answer = None
    if keep_text:
        prompt = event.request.text[:TEXT_LIMIT]
        answer = result.text[:TEXT_LIMIT] if result is not None else None
    return RequestSummary(
        id=seq,
        at=event.started_at,
        use_case=event.request.use_case or (decision.use_case if decision else None),
        rule=rule,
        model=model,
        provider=provider,
        outcome=event.outcome,
        tried=tried,
        input_tokens=result.usage.input_tokens if result is not None else 0,
        output_tokens=result.usage.output_tokens if result is not None else 0,
        cost_usd=result.cost_usd if result is not None else 0.0,
        latency_ms=round(event.duration_s * 1000, 3),
        cache=event.cache,
        key=event.request.key,
        error=None if error is None else type(error).__name__,
        prompt=prompt,
        answer=answer,
    )


def _bucket(start: float, records: Sequence[RequestSummary]) -> MinuteStats:
    latencies = [r.latency_ms for r in records]
    return MinuteStats(
        start=start,
        requests=len(records),
        errors=sum(r.outcome != "ok" for r in records),
        fallbacks=sum(r.fallback for r in records),
        cache_hits=sum(r.cache == "hit" for r in records),
        cache_lookups=sum(r.cache is not None for r in records),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
    )


class RecentRequests:
    """An `Observer` that keeps the last `capacity` requests (see the module's docstring)."""

    def __init__(
        self,
        capacity: int = 1000,
        *,
        keep_text: Callable[[], bool] = lambda: False,
        clock: Clock = time.time,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._ring: deque[RequestSummary] = deque(maxlen=capacity)
        self._keep_text = keep_text
        self._clock = clock
        self._lock = threading.Lock()
        self._seq = 0

    # -- Observer -------------------------------------------------------------------
    def request_ended(self, event: RequestEnded) -> None:
        keep = bool(self._keep_text())
        with self._lock:
            self._seq += 1
            self._ring.append(_summarise(event, self._seq, keep))

    def reloaded(self, event: ReloadEvent) -> None:
        """Nothing to keep: the console asks the Router for reloads."""

    def close(self) -> None:
        """The ring is memory only."""

    # -- reading --------------------------------------------------------------------
    def records(
        self,
        *,
        rule: str | None = None,
        model: str | None = None,
        outcome: str | None = None,
        limit: int | None = None,
    ) -> list[RequestSummary]:
        """Newest first, filtered by rule, model and outcome (each None: any)."""
        with self._lock:
            items = list(self._ring)
        out = []
        for rec in reversed(items):
            if rule is not None and rec.rule != rule:
                continue
            if model is not None and rec.model != model:
                continue
            if outcome is not None and rec.outcome != outcome:
                continue
            out.append(rec)
            if limit is not None and len(out) >= limit:
                break
        return out

    def overview(
        self, minutes: int = 30, *, window_s: float = 300.0, bucket_s: float = 60.0
    ) -> TrafficOverview:
        """The last `window_s` seconds in figures, and `minutes` buckets for the charts."""
        now = self._clock()
        with self._lock:
            items = list(self._ring)
        first = (math.floor(now / bucket_s) - max(1, minutes) + 1) * bucket_s
        grouped: list[list[RequestSummary]] = [[] for _ in range(max(1, minutes))]
        for rec in items:
            if rec.at >= first:
                i = min(int((rec.at - first) // bucket_s), len(grouped) - 1)
                grouped[i].append(rec)
        recent = [r for r in items if r.at >= now - window_s]
        lookups = sum(r.cache is not None for r in recent)
        latencies = [r.latency_ms for r in recent]
        # A server up for less than the window has not had the whole window to count in.
        span = min(window_s, max(bucket_s, now - min((r.at for r in recent), default=now)))
        return TrafficOverview(
            window_s=window_s,
            requests=len(recent),
            requests_per_min=round(len(recent) * 60.0 / span, 3),
            p50_ms=percentile(latencies, 50),
            p99_ms=percentile(latencies, 99),
            error_rate=_rate(sum(r.outcome != "ok" for r in recent), len(recent)),
            fallback_rate=_rate(sum(r.fallback for r in recent), len(recent)),
            cache_hit_rate=_rate(sum(r.cache == "hit" for r in recent), lookups),
            buckets=tuple(_bucket(first + i * bucket_s, group) for i, group in enumerate(grouped)),
            bucket_s=bucket_s,
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._ring)


__all__ = [
    "MinuteStats",
    "RecentRequests",
    "RequestSummary",
    "TrafficOverview",
    "TriedModel",
    "percentile",
]

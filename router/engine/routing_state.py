"""What the engine asks of live state while filtering and ordering candidates.

The runtime implements this in-process; a shared (Redis) store can implement it
later without the engine changing. Every method must be cheap: it runs per
candidate per request.
"""

from __future__ import annotations

from typing import Protocol

from router.types import Rejection


class RoutingState(Protocol):
    def unavailable_reason(self, model: str, rule: str) -> Rejection | str | None:
        """Why `model` cannot be tried now (circuit open, budget spent, rate limit).

        A `Rejection` says which kind; a plain str counts as `RejectionKind.OTHER`.
        """
        ...

    def latency(self, model: str) -> float | None:
        """Observed latency in seconds (moving average), None before any call."""
        ...

    def in_flight(self, model: str) -> int:
        """Requests running on `model` now."""
        ...

    def next_index(self, key: str) -> int:
        """A counter that grows by one per call (round robin)."""
        ...


class NullState:
    """No live state: nothing is unavailable, nothing measured."""

    def __init__(self) -> None:
        self._counters: dict[str, int] = {}

    def unavailable_reason(self, model: str, rule: str) -> Rejection | str | None:
        return None

    def latency(self, model: str) -> float | None:
        return None

    def in_flight(self, model: str) -> int:
        return 0

    def next_index(self, key: str) -> int:
        n = self._counters.get(key, 0)
        self._counters[key] = n + 1
        return n

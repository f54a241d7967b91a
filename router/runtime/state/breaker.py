"""A circuit breaker per model, with its state open to view.

    closed ──(failures errors within window)──> open
    open ──(cooldown elapsed)──> half-open: one probe at a time
    half-open ──probe succeeds──> closed      half-open ──probe fails──> open again

LiteLLM users cannot see why a deployment is cooling down; here `state()` and
`unavailable_reason()` say which state, how many failures and until when (wall clock).

`unavailable_reason()` runs per candidate per request, so it reads without a lock:
every field it reads is replaced whole under the lock, and a stale read only makes one
request skip, or try, a model a moment early or late. The probe slot itself is claimed
under the lock in `acquire()`, so exactly one caller gets it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from router.config.model import BreakerPolicy
from router.types import Record

Clock = Callable[[], float]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True, eq=False)  # equal as mappings, to dicts too
class BreakerState(Record):
    """What `router.status()` and `explain()` show of one breaker."""

    state: str  # closed | open | half_open
    failures: int  # errors counted within the window
    open_until: float | None  # wall-clock epoch seconds while open
    probe_in_flight: bool = False
    reason: str | None = None  # why it is not closed
    opened: int = 0  # times it has opened since it was created

    def to_dict(self) -> dict[str, Any]:
        return self.as_dict()

    def as_dict(self) -> dict[str, Any]:
        until = None
        if self.open_until is not None:
            until = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.open_until))
        return {
            "state": self.state,
            "failures": self.failures,
            "open_until": until,
            "probe_in_flight": self.probe_in_flight,
            "reason": self.reason,
            "opened": self.opened,
        }


def _clock_time(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))


class CircuitBreaker:
    def __init__(
        self,
        policy: BreakerPolicy,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._failures: deque[float] = deque()
        self._state = CLOSED  # CLOSED or OPEN; half-open is OPEN past its deadline
        self._open_until = 0.0  # monotonic
        self._open_until_wall = 0.0
        self._why = ""  # "3 failures in 60s" or "probe failed"
        self._probe_since: float | None = None  # monotonic time a probe was handed out
        self._opened = 0

    # -- the hot path -------------------------------------------------------------

    def unavailable_reason(self) -> str | None:
        """Why this model cannot be tried now, or None. Claims nothing."""
        if self._state is CLOSED:
            return None
        now = self._clock()
        if now < self._open_until:
            return f"circuit open until {_clock_time(self._open_until_wall)} ({self._why})"
        if self._probe_since is not None and not self._probe_stale(now):
            return f"circuit half-open: probe in flight ({self._why})"
        return None

    @property
    def closed(self) -> bool:
        return self._state is CLOSED

    # -- the attempt loop ---------------------------------------------------------

    def acquire(self) -> str | None:
        """Ask to send one request. None: go ahead (the probe, if half-open); else why not.

        A caller that got None while the circuit was half-open holds the probe and must
        end it with `record_success`, `record_failure` or `release`.
        """
        if self._state is CLOSED:
            return None
        with self._lock:
            if self._state is CLOSED:
                return None
            now = self._clock()
            if now < self._open_until:
                return f"circuit open until {_clock_time(self._open_until_wall)} ({self._why})"
            if self._probe_since is not None and not self._probe_stale(now):
                return f"circuit half-open: probe in flight ({self._why})"
            self._probe_since = now
            return None

    def record_success(self) -> None:
        if self._state is CLOSED:
            return
        with self._lock:
            if self._state is OPEN and self._clock() >= self._open_until:
                # The probe (or a request admitted before the circuit opened) came back well.
                self._close()

    def record_failure(self) -> None:
        with self._lock:
            now = self._clock()
            if self._state is OPEN:
                if now >= self._open_until:
                    self._open(now, "probe failed")
                # A request admitted before the circuit opened: nothing new to learn.
                return
            self._failures.append(now)
            self._trim(now)
            if len(self._failures) >= self.policy.failures:
                self._open(now, f"{len(self._failures)} failures in {self.policy.window:g}s")

    def trip(self, why: str) -> None:
        """Open the circuit now (nothing listens at the endpoint), for one cooldown."""
        with self._lock:
            self._open(self._clock(), why)

    def release(self) -> None:
        """Give the probe slot back unused (e.g. the request was a bad one, or not sent)."""
        with self._lock:
            self._probe_since = None

    # -- views and upkeep ---------------------------------------------------------

    def state(self) -> BreakerState:
        with self._lock:
            now = self._clock()
            self._trim(now)
            if self._state is CLOSED:
                return BreakerState(CLOSED, len(self._failures), None, opened=self._opened)
            probing = self._probe_since is not None and not self._probe_stale(now)
            name = OPEN if now < self._open_until else HALF_OPEN
            reason = (
                f"circuit open until {_clock_time(self._open_until_wall)} ({self._why})"
                if name == OPEN
                else f"circuit half-open ({self._why})"
            )
            return BreakerState(
                name,
                len(self._failures),
                self._open_until_wall,
                probe_in_flight=probing,
                reason=reason,
                opened=self._opened,
            )

    def update_policy(self, policy: BreakerPolicy) -> None:
        """A reload changed the numbers; the state carries over."""
        with self._lock:
            if self._state is OPEN and policy.cooldown != self.policy.cooldown:
                # An operator shortening (or lengthening) the cooldown means it now.
                shift = policy.cooldown - self.policy.cooldown
                self._open_until += shift
                self._open_until_wall += shift
            self.policy = policy

    def reset(self) -> None:
        with self._lock:
            self._close()

    # -- internals (lock held) ----------------------------------------------------

    def _trim(self, now: float) -> None:
        horizon = now - self.policy.window
        while self._failures and self._failures[0] <= horizon:
            self._failures.popleft()

    def _probe_stale(self, now: float) -> bool:
        # A probe that never reported back (a caller that died) must not wedge the
        # breaker half-open for ever: after another cooldown a new probe may go.
        assert self._probe_since is not None
        return now - self._probe_since > max(self.policy.cooldown, 1.0)

    def _open(self, now: float, why: str) -> None:
        self._open_until = now + self.policy.cooldown
        self._open_until_wall = self._wall() + self.policy.cooldown
        self._why = why
        self._probe_since = None
        self._opened += 1
        self._state = OPEN  # last: the lock-free readers see a complete state

    def _close(self) -> None:
        self._state = CLOSED
        self._failures.clear()
        self._probe_since = None
        self._why = ""


__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "BreakerState", "CircuitBreaker"]

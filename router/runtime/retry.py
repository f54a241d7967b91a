"""Retry timing: exponential backoff with full jitter, and which errors deserve a retry.

Full jitter (sleep ``U(0, min(max_backoff, backoff * 2**n))``) spreads retries of many
clients over the whole window instead of having them hit a recovering server in waves.
A server's ``Retry-After`` is better information than any guess, so it wins, within a cap:
a server asking for an hour is better answered by the next candidate than by a sleep.
"""

from __future__ import annotations

import random
from typing import Protocol

from router.config.model import RetryPolicy
from router.errors import ProviderError, RateLimited

# The longest Retry-After the router will sleep for on one model. Longer asks are
# clamped; the attempt loop moves on when the wait does not fit the deadline.
MAX_RETRY_AFTER = 60.0

# 2**64 seconds is already longer than any max_backoff; larger exponents only overflow.
_MAX_EXPONENT = 64


class Rng(Protocol):
    def random(self) -> float: ...


_DEFAULT_RNG = random.Random()


def backoff_delay(
    attempt: int,
    policy: RetryPolicy,
    retry_after: float | None = None,
    rng: Rng | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    ``retry_after`` (from the server) wins when given and sane; it is capped at the larger
    of ``policy.max_backoff`` and ``MAX_RETRY_AFTER``.
    """
    if retry_after is not None and retry_after >= 0:
        return float(min(retry_after, max(policy.max_backoff, MAX_RETRY_AFTER)))
    n = min(max(attempt, 0), _MAX_EXPONENT)
    ceiling = min(policy.max_backoff, policy.backoff * (2.0**n))
    if ceiling <= 0:
        return 0.0
    return (rng or _DEFAULT_RNG).random() * ceiling


def is_retryable(exc: ProviderError) -> bool:
    """Rate limits, 5xx, timeouts and connection errors are worth another try.

    Bad requests (context overflow included) and auth errors are not: the same call
    would fail the same way. A stream that already yielded text is not retried either;
    the caller holds part of an answer.
    """
    return exc.retryable and not exc.partial


def retry_after_of(exc: ProviderError) -> float | None:
    """The server's Retry-After, in seconds, when the error carries one."""
    # Only RateLimited declares it, but a 503 adapter may attach one too.
    value = exc.retry_after if isinstance(exc, RateLimited) else getattr(exc, "retry_after", None)
    if isinstance(value, (int, float)) and value >= 0:
        return float(value)
    return None


__all__ = ["MAX_RETRY_AFTER", "Rng", "backoff_delay", "is_retryable", "retry_after_of"]

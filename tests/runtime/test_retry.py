"""Backoff timing and which errors are retried."""

from __future__ import annotations

import random

import pytest

from router.config.model import RetryPolicy
from router.errors import (
    AuthError,
    BadRequest,
    ContextOverflow,
    RateLimited,
    Timeout,
    Unavailable,
)
from router.runtime.retry import MAX_RETRY_AFTER, backoff_delay, is_retryable, retry_after_of


class FixedRng:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_full_jitter_spans_zero_to_ceiling() -> None:
    policy = RetryPolicy(retries=5, backoff=0.5, max_backoff=8.0)
    assert backoff_delay(0, policy, rng=FixedRng(0.0)) == 0.0
    assert backoff_delay(0, policy, rng=FixedRng(0.999999)) == pytest.approx(0.5, rel=1e-5)
    assert backoff_delay(2, policy, rng=FixedRng(0.5)) == pytest.approx(1.0)  # 0.5*4/2


def test_ceiling_grows_exponentially_then_caps() -> None:
    policy = RetryPolicy(retries=10, backoff=0.5, max_backoff=8.0)
    top = [backoff_delay(n, policy, rng=FixedRng(1.0)) for n in range(8)]
    assert top == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


def test_huge_attempt_number_does_not_overflow() -> None:
    policy = RetryPolicy(backoff=1.0, max_backoff=3.0)
    assert backoff_delay(10_000, policy, rng=FixedRng(1.0)) == 3.0


def test_jitter_is_spread_over_the_window() -> None:
    policy = RetryPolicy(backoff=1.0, max_backoff=100.0)
    rng = random.Random(7)
    delays = [backoff_delay(3, policy, rng=rng) for _ in range(2000)]
    assert 0.0 <= min(delays) < 0.5
    assert 7.5 < max(delays) <= 8.0
    assert 3.5 < sum(delays) / len(delays) < 4.5  # mean of U(0, 8)


def test_retry_after_wins_over_backoff() -> None:
    policy = RetryPolicy(backoff=0.01, max_backoff=0.02)
    assert backoff_delay(0, policy, retry_after=2.5, rng=FixedRng(1.0)) == 2.5
    assert backoff_delay(0, policy, retry_after=0.0, rng=FixedRng(1.0)) == 0.0


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(backoff=0.5, max_backoff=8.0)
    assert backoff_delay(0, policy, retry_after=3600) == MAX_RETRY_AFTER
    big = RetryPolicy(backoff=1, max_backoff=120.0)
    assert backoff_delay(0, big, retry_after=3600) == 120.0


def test_negative_retry_after_is_ignored() -> None:
    policy = RetryPolicy(backoff=1.0, max_backoff=1.0)
    assert backoff_delay(0, policy, retry_after=-5, rng=FixedRng(0.5)) == 0.5


def test_zero_backoff_means_no_wait() -> None:
    assert backoff_delay(3, RetryPolicy(backoff=0.0), rng=FixedRng(0.9)) == 0.0


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (RateLimited("429"), True),
        (Unavailable("503"), True),
        (Timeout("slow"), True),
        (Unavailable("connection refused"), True),
        (BadRequest("400"), False),
        (ContextOverflow("too long"), False),
        (AuthError("401"), False),
    ],
)
def test_only_transient_errors_are_retried(exc: Exception, expected: bool) -> None:
    assert is_retryable(exc) is expected  # type: ignore[arg-type]


def test_partial_stream_is_not_retried() -> None:
    assert not is_retryable(Unavailable("cut", partial=True))


def test_retry_after_of() -> None:
    assert retry_after_of(RateLimited("429", retry_after=3)) == 3.0
    assert retry_after_of(RateLimited("429")) is None
    assert retry_after_of(Unavailable("503")) is None
    exc = Unavailable("503")
    exc.retry_after = 1.5  # type: ignore[attr-defined]
    assert retry_after_of(exc) == 1.5

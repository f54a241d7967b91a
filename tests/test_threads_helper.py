"""The thread helper re-raises a worker's failure in the test thread."""

from __future__ import annotations

import pytest

from tests.threads import Workers, run_threads


def test_a_failed_assertion_in_a_worker_fails_the_test() -> None:
    def worker(n: int) -> None:
        assert n != 3, "worker 3 failed"

    with pytest.raises(AssertionError, match="worker 3 failed"):
        run_threads(worker, [(i,) for i in range(5)])


def test_workers_that_pass_leave_nothing_behind() -> None:
    done: list[int] = []
    workers = Workers(timeout=10)
    for i in range(4):
        workers.start(done.append, i)
    workers.join()
    assert sorted(done) == [0, 1, 2, 3] and workers.errors == []

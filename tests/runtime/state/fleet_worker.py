"""What each OS process of the fleet tests runs: a `Router` on a config that names the
test's Redis, driven by threads. Started with multiprocessing's spawn (a fresh
interpreter, as `router serve --workers N` or a replica would be)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from router import Router
from router.errors import RouterError


def _wait_for(check: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.01)
    return False


def _shared(r: Router) -> dict[str, Any]:
    out: dict[str, Any] = r.status()["state"]["shared_state"]
    return out


def _settled(r: Router) -> bool:
    s = _shared(r)
    return bool(s["connected"]) and s["pending_writes"] == 0


def hammer_budget(config: str, threads: int, max_requests: int, start: Any, out: Any) -> None:
    """Threads route until the budget refuses; report what was served and what it cost."""
    r = Router.from_config(config, check_tests=False)
    served: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(max_requests):
            try:
                res = r.route("hi", use_case="chat")
            except RouterError as exc:
                if "budget" not in str(exc):
                    with lock:
                        errors.append(str(exc))
                return
            with lock:
                served.append(res.cost_usd)

    start.wait(timeout=30)
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    _wait_for(lambda: _settled(r), 10)
    r.close()
    out.put({"served": len(served), "cost": sum(served), "errors": errors})


def route_many(config: str, n: int, use_case: str, start: Any, out: Any) -> None:
    """Route `n` requests one after another; report the model of each."""
    r = Router.from_config(config, check_tests=False)
    models: list[str] = []
    errors: list[str] = []
    start.wait(timeout=30)
    for _ in range(n):
        try:
            models.append(r.route("hi", use_case=use_case).model)
        except RouterError as exc:
            errors.append(str(exc))
    r.close()
    out.put({"models": models, "errors": errors})


def route_together(config: str, threads: int, ready: Any, start: Any, out: Any) -> None:
    """Wait until this process sees the breaker of `slow` not closed, then fire
    `threads` requests at once (after the fleet's barrier); report the models."""
    r = Router.from_config(config, check_tests=False)

    def seen_open() -> bool:
        state = r.status()["state"]["models"]["slow"]["breaker"]["state"]
        return state in ("open", "half_open")

    _wait_for(seen_open, 10)
    _wait_for(lambda: r.status()["state"]["models"]["slow"]["breaker"]["state"] == "half_open", 10)
    ready.wait(timeout=30)
    models: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            m = r.route("hi", use_case="chat").model
        except RouterError as exc:
            m = f"error: {exc}"
        with lock:
            models.append(m)

    start.wait(timeout=30)
    pool = [threading.Thread(target=one) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=30)
    r.close()
    out.put({"models": models})


def open_breaker(config: str, model: str, failures: int, out: Any) -> None:
    """Count failures of `model` until its circuit opens; report when (wall clock)."""
    r = Router.from_config(config, check_tests=False)
    live = r._live
    for _ in range(failures):
        live.breaker(model).record_failure()
    opened = time.time()
    _wait_for(lambda: _settled(r), 5)
    r.close()
    out.put({"opened_at": opened})


def watch_breaker(config: str, model: str, opened: Any, out: Any) -> None:
    """After another process opened `model`'s circuit, poll until this one skips it."""
    r = Router.from_config(config, check_tests=False)
    assert r.explain("hi", use_case="chat").model == model  # closed here at first
    opened.wait(timeout=30)
    t0 = time.time()
    skipped = _wait_for(lambda: r.explain("hi", use_case="chat").model != model, 5)
    seen = time.time()
    trace = r.explain("hi", use_case="chat").describe().splitlines()
    r.close()
    out.put({"skipped": skipped, "seen_at": seen, "waited": seen - t0, "trace": trace})


def route_through_outage(config: str, n: int, progress: Any, resume: Any, out: Any) -> None:
    """Route `n` requests (paced) while the test kills and restarts Redis; then wait
    for the queued writes to reach it."""
    r = Router.from_config(config, check_tests=False)
    costs: list[float] = []
    errors: list[str] = []
    went_down = False
    for i in range(n):
        try:
            costs.append(r.route("hi", use_case="chat").cost_usd)
        except RouterError as exc:
            errors.append(str(exc))
        with progress.get_lock():
            progress.value += 1
        went_down = went_down or not _shared(r)["connected"]
        if i == n // 2:
            resume.wait(timeout=30)  # the test restarts Redis meanwhile
        time.sleep(0.005)
    settled = _wait_for(lambda: _settled(r), 15)
    r.close()
    out.put({"costs": costs, "errors": errors, "settled": settled, "went_down": went_down})


__all__ = [
    "Path",
    "hammer_budget",
    "open_breaker",
    "route_many",
    "route_through_outage",
    "route_together",
    "watch_breaker",
]

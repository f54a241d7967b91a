"""The loop's share of the deadline per call, and a hedge race as steps: no I/O at all.

Time is moved by setting the run's deadline, never by sleeping.
"""

from __future__ import annotations

import time

import pytest

from router.config.model import HedgePolicy, ProviderConfig, RetryPolicy
from router.engine import decide
from router.engine.requests import build_request
from router.errors import Timeout
from router.providers.base import Completion
from router.runtime.loop import MIN_SHARE, MIN_TIMEOUT, Run, plan
from router.runtime.snapshot import Snapshot
from router.runtime.state.live import LiveState, Ticket
from router.runtime.state.usage import MemoryUsageStore
from router.runtime.steps import RACING, Admit, Cancel, Finished, Invoke, Race
from router.types import Result, Usage
from tests.engine.builders import model, rule


@pytest.fixture
def start(make_config):
    states: list[LiveState] = []

    def begin(targets: list[str], **rule_kw):
        cfg = make_config(
            [rule("r", targets, **rule_kw)],
            models=[model(m) for m in ("a", "b", "c")],
            providers=[ProviderConfig("echo", "mock", timeout=60, retry=RetryPolicy(retries=2))],
        )
        snap = Snapshot.build(cfg, 1)
        state = LiveState(cfg, MemoryUsageStore())
        states.append(state)
        request = build_request("hello")
        decision, cands = decide(snap.ruleset, request, state)
        run = Run(snap, request, decision, cands, state)
        return run, plan(run)

    yield begin
    for s in states:
        s.close()


def first_invoke(run, steps) -> Invoke:
    step = steps.send(None)
    assert isinstance(step, Admit)
    invoke = steps.send(run.admit(step))
    assert isinstance(invoke, Invoke)
    return invoke


def test_each_call_gets_its_share_and_the_last_gets_the_rest(start) -> None:
    run, steps = start(["a", "b"], deadline=10.0)
    invoke = first_invoke(run, steps)
    run.deadline = time.monotonic() + 10.0
    timeout = run.timed(invoke.call).timeout
    assert timeout is not None and 4.9 < timeout <= 5.0  # two candidates: half
    # It times out: no retry of `a` (it had its share), `b` next with all that is left.
    nxt = steps.send(Timeout("slow", provider="echo"))
    assert isinstance(nxt, Admit) and nxt.cand.model.name == "b"
    invoke = steps.send(run.admit(nxt))
    run.deadline = time.monotonic() + 6.0
    timeout = run.timed(invoke.call).timeout
    assert timeout is not None and 5.9 < timeout <= 6.0


def test_the_share_has_a_floor_and_never_exceeds_the_provider_timeout(start) -> None:
    run, steps = start(["a", "b", "c"], deadline=100.0)
    invoke = first_invoke(run, steps)
    run.deadline = time.monotonic() + 1.5  # three candidates: 0.5 s each, floored
    timeout = run.timed(invoke.call).timeout
    assert timeout is not None and MIN_SHARE - 0.1 < timeout <= MIN_SHARE
    run.deadline = time.monotonic() + 1000.0  # a third is 333 s: the provider's 60 s wins
    assert run.timed(invoke.call).timeout == 60


def test_a_deadline_already_past_never_gives_a_zero_or_negative_timeout(start) -> None:
    # Clients refuse those ("Timeout value out of range"): the call gets a token time
    # and the loop sees the deadline when it ends.
    run, steps = start(["a", "b"], deadline=10.0)
    invoke = first_invoke(run, steps)
    run.deadline = time.monotonic() - 5.0
    assert run.timed(invoke.call).timeout == MIN_TIMEOUT


def test_adapter_setup_does_not_count_against_the_deadline(start) -> None:
    run, steps = start(["a", "b"], deadline=10.0)
    first_invoke(run, steps)
    left = run.left()
    assert left is not None
    run.setup_s += 30.0  # an import of litellm that took 30 s
    later = run.left()
    assert later is not None and later > left + 29.0


def test_a_hedge_race_as_steps(start) -> None:
    run, steps = start(["a", "b"], hedge=HedgePolicy(after_ms=800))
    invoke = first_invoke(run, steps)
    assert invoke.hedge_after == 0.8 and invoke.call.model.name == "a"
    nxt = steps.send(RACING)  # `a` has not answered after 800 ms
    assert isinstance(nxt, Admit) and nxt.cand.model.name == "b"
    ticket_b = run.admit(nxt)
    race = steps.send(ticket_b)
    assert isinstance(race, Race) and race.call.model.name == "b"
    assert isinstance(ticket_b, Ticket)
    cancel = steps.send(Finished(ticket_b, Completion("from b", Usage(3, 4))))
    assert isinstance(cancel, Cancel) and cancel.ticket is invoke.ticket
    with pytest.raises(StopIteration) as stop:
        steps.send(None)  # `a` was stopped before it answered
    result = stop.value.value
    assert isinstance(result, Result) and (result.model, result.text) == ("b", "from b")
    assert [(a.model, a.error) for a in result.attempts] == [("a", "cancelled")]
    assert invoke.ticket.done  # `a`'s ticket was given back


def test_no_hedge_without_a_next_candidate_or_in_a_stream(start) -> None:
    run, steps = start(["a"], hedge=HedgePolicy(after_ms=800))
    assert first_invoke(run, steps).hedge_after is None
    run, steps = start(["a", "b"], hedge=HedgePolicy(after_ms=800))
    run.streaming = True
    assert first_invoke(run, steps).hedge_after is None

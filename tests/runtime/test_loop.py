"""`loop.plan`: the attempt loop's decisions, driven here by hand, with no I/O at all."""

from __future__ import annotations

import pytest

from router.config.model import ProviderConfig, RetryPolicy
from router.engine import decide
from router.engine.requests import build_request
from router.errors import BadRequest, NoRouteError, Unavailable
from router.providers.base import Completion
from router.runtime.loop import SKIPPED, Admit, Invoke, Pause, Run, plan
from router.runtime.snapshot import Snapshot
from router.runtime.state.live import LiveState, Ticket
from router.runtime.state.usage import MemoryUsageStore
from router.types import Result, Usage
from tests.engine.builders import model, rule


@pytest.fixture
def start(make_config):
    cfg = make_config(
        [rule("r", ["a", "b"])],
        models=[model("a"), model("b")],
        providers=[ProviderConfig("echo", "mock", retry=RetryPolicy(retries=1, backoff=0.01))],
    )
    states: list[LiveState] = []

    def begin():
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


def admit(run, step):
    assert isinstance(step, Admit)
    return run.admit(step)


def test_a_retryable_failure_pauses_then_tries_the_same_model_again(start):
    run, steps = start()
    step = steps.send(None)
    ticket = admit(run, step)
    assert isinstance(ticket, Ticket) and step.cand.model.name == "a"
    invoke = steps.send(ticket)
    assert isinstance(invoke, Invoke) and invoke.call.model.name == "a"
    pause = steps.send(Unavailable("503", provider="echo"))
    assert isinstance(pause, Pause) and 0 <= pause.seconds <= 0.01
    again = steps.send(None)
    assert isinstance(again, Admit) and again.cand.model.name == "a"
    invoke = steps.send(admit(run, again))
    with pytest.raises(StopIteration) as stop:
        steps.send(Completion("hi", Usage(1, 1)))
    result = stop.value.value
    assert isinstance(result, Result) and result.model == "a" and result.text == "hi"
    assert [a.error for a in result.attempts] == ["unavailable"]


def test_a_bad_request_moves_on_at_once_and_the_end_is_no_route(start):
    run, steps = start()
    step = steps.send(None)
    assert isinstance(steps.send(admit(run, step)), Invoke)
    step = steps.send(BadRequest("400", provider="echo"))  # not retried: the next model
    assert isinstance(step, Admit) and step.cand.model.name == "b"
    assert isinstance(steps.send(admit(run, step)), Invoke)
    with pytest.raises(NoRouteError, match="every candidate failed") as info:
        steps.send(BadRequest("400", provider="echo"))
    assert [(a.model, a.error) for a in info.value.attempts] == [
        ("a", "bad_request"),
        ("b", "bad_request"),
    ]


def test_a_refused_admission_is_recorded_as_skipped(start):
    run, steps = start()
    step = steps.send(None)
    run.state.disable_provider("echo", "test says so")
    assert admit(run, step) is None
    step = steps.send(None)
    assert isinstance(step, Admit) and step.cand.model.name == "b"
    assert admit(run, step) is None
    with pytest.raises(NoRouteError) as info:
        steps.send(None)  # b is refused too: nothing left
    assert {a.error for a in info.value.attempts} == {SKIPPED}
    assert "test says so" in info.value.attempts[0].message


def test_a_failure_after_text_reached_the_caller_is_raised_not_retried(start):
    run, steps = start()
    step = steps.send(None)
    steps.send(admit(run, step))
    exc = Unavailable("dropped", provider="echo", partial=True)
    with pytest.raises(Unavailable) as info:
        steps.send(exc)
    assert info.value is exc and run.attempts[0].error == "unavailable"

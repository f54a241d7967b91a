"""Spill-over in the engine: a busy first candidate moves last, and the trace says why."""

from __future__ import annotations

import pytest

from router.config.model import SpillPolicy
from router.engine import RuleSet, decide
from tests.engine.builders import model, req, rule
from tests.engine.test_decide import FakeState


def decision(make_config, policy, state):
    cfg = make_config(
        [rule("local-first", ["local", "cloud", "other"], spill=policy)],
        models=[model("local"), model("cloud"), model("other")],
    )
    return decide(RuleSet(cfg), req(), state)


@pytest.mark.parametrize(
    ("in_flight", "spilled"), [(0, False), (1, False), (3, False), (4, True), (9, True)]
)
def test_queue(make_config, in_flight, spilled):
    d, cands = decision(make_config, SpillPolicy(queue=2), FakeState(busy={"local": in_flight}))
    if spilled:
        assert d.model == "cloud"
        assert [c.model.name for c in cands] == ["cloud", "other", "local"]
        assert d.rules[0].note == f"spilled: local queue {in_flight - 1} > 2"
        assert f"-> spilled: local queue {in_flight - 1} > 2" in d.describe()
    else:
        assert d.model == "local" and d.rules[0].note == ""


def test_wait_ms_uses_measured_latency(make_config):
    policy = SpillPolicy(wait_ms=500)
    # 2 in flight x 0.3 s = 600 ms > 500 ms
    d, _ = decision(make_config, policy, FakeState(busy={"local": 2}, latency={"local": 0.3}))
    assert d.model == "cloud"
    assert d.rules[0].note == "spilled: local expected wait 600 ms > 500 ms"
    # 1 x 0.3 s = 300 ms: keeps waiting for the local model
    d, _ = decision(make_config, policy, FakeState(busy={"local": 1}, latency={"local": 0.3}))
    assert d.model == "local"
    # no measurement yet: nothing to expect a wait from
    d, _ = decision(make_config, policy, FakeState(busy={"local": 5}))
    assert d.model == "local"


def test_no_spill_without_policy_or_with_one_candidate(make_config):
    cfg = make_config([rule("r", ["local", "cloud"])], models=[model("local"), model("cloud")])
    d, _ = decide(RuleSet(cfg), req(), FakeState(busy={"local": 50}))
    assert d.model == "local"
    cfg = make_config([rule("r", ["local"], spill=SpillPolicy(queue=0))], models=[model("local")])
    d, _ = decide(RuleSet(cfg), req(), FakeState(busy={"local": 50}))
    assert d.model == "local"  # nowhere to spill to

from __future__ import annotations

import collections

import pytest

from router.config.model import ProviderConfig, Settings, UseCaseConfig
from router.engine import STRATEGIES, NullState, RuleSet, decide
from router.types import Rejection, RejectionKind
from tests.engine.builders import model, req, rule


class FakeState(NullState):
    """Live state as the runtime would report it."""

    def __init__(self, unavailable=None, latency=None, busy=None):
        super().__init__()
        self.unavailable = unavailable or {}
        self.latencies = latency or {}
        self.busy = busy or {}

    def unavailable_reason(self, model, rule):
        return self.unavailable.get(model)

    def latency(self, model):
        return self.latencies.get(model)

    def in_flight(self, model):
        return self.busy.get(model, 0)


def run(config, request=None, state=None):
    return decide(RuleSet(config), request or req(), state or NullState(), version=7)


def test_first_matching_rule_in_file_order(make_config):
    cfg = make_config(
        [
            rule("coding", ["a"], when={"use_case": "coding"}),
            rule("chat", ["b"], when={"use_case": "chat"}),
            rule("default", ["c"]),
        ]
    )
    d, cands = run(cfg, req(use_case="chat"))
    assert (d.rule, d.model, d.provider) == ("chat", "b", "echo")
    assert [c.model.name for c in cands] == ["b"]
    assert d.config_version == 7
    d, _ = run(cfg, req(use_case="other"))
    assert d.rule == "default"


def test_generic_rules_keep_their_place_among_indexed_ones(make_config):
    cfg = make_config(
        [
            rule("long", ["a"], when={"tokens": {"gt": 5}}),
            rule("coding", ["b"], when={"use_case": "coding"}),
            rule("default", ["c"]),
        ]
    )
    d, _ = run(cfg, req("word " * 40, use_case="coding"))
    assert d.rule == "long"  # the unrestricted rule comes first in the file
    d, _ = run(cfg, req("hi", use_case="coding"))
    assert d.rule == "coding"
    assert [t.rule for t in d.rules] == ["long", "coding"]
    assert d.rules[0].matched is False


def test_detector_sets_use_case_when_request_names_none(make_config):
    cfg = make_config(
        [rule("coding", ["a"], when={"use_case": "coding"}), rule("default", ["b"])],
        use_cases=[
            UseCaseConfig("coding", matches=r"(?i)\bdef\b"),
            UseCaseConfig("chat", contains=("hello",)),
        ],
    )
    d, _ = run(cfg, req("def f(): pass"))
    assert (d.use_case, d.rule) == ("coding", "coding")
    d, _ = run(cfg, req("HELLO friend"))
    assert (d.use_case, d.rule) == ("chat", "default")
    # An explicit use case wins over detection.
    d, _ = run(cfg, req("def f(): pass", use_case="chat"))
    assert d.rule == "default"


def test_disabled_provider_is_dropped_with_its_reason(make_config):
    cfg = make_config(
        [rule("r", ["cloud", "a"])],
        models=[model("cloud", provider="openai"), model("a")],
        providers=[
            ProviderConfig("openai", "litellm", disabled_reason="OPENAI_API_KEY is not set"),
            ProviderConfig("echo", "mock"),
        ],
    )
    d, _ = run(cfg)
    assert d.model == "a"
    assert d.rejected == {"cloud": "OPENAI_API_KEY is not set"}


def test_context_filter_counts_input_and_requested_output(make_config):
    cfg = make_config(
        [rule("r", ["small", "big"])],
        models=[model("small", context=100), model("big", context=10_000)],
    )
    d, _ = run(cfg, req("x" * 200, max_tokens=50))  # ~54 in + 50 out > 100
    assert d.model == "big"
    assert d.rejected["small"].startswith("context too small: needs 104 tokens")
    d, _ = run(cfg, req("x" * 200, max_tokens=40))
    assert d.model == "small"


def test_rule_max_tokens_and_default_feed_the_context_check(make_config):
    cfg = make_config(
        [rule("r", ["small", "big"], params={"max_tokens": 500})],
        models=[model("small", context=300), model("big", context=10_000)],
    )
    d, _ = run(cfg)
    assert d.model == "big" and d.max_tokens == 500
    cfg = make_config(
        [rule("r", ["small", "big"])],
        models=[model("small", context=300), model("big", context=10_000)],
        settings=Settings(default_max_tokens=50),
    )
    assert run(cfg)[0].model == "small"


@pytest.mark.parametrize(
    ("kw", "need"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"response_format": {"type": "json_object"}}, "json"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what is this"},
                            {"type": "image_url", "image_url": {"url": "data:,"}},
                        ],
                    }
                ]
            },
            "vision",
        ),
    ],
)
def test_capability_filter(make_config, kw, need):
    cfg = make_config(
        [rule("r", ["plain", "able"])],
        models=[model("plain"), model("able", capabilities=["tools", "json", "vision"])],
    )
    prompt = None if "messages" in kw else "hi"
    d, _ = run(cfg, req(prompt, **kw) if prompt else req(None, **kw))
    assert d.model == "able"
    assert d.rejected == {"plain": f"missing capability: {need}"}


def test_state_reasons_drop_candidates(make_config):
    cfg = make_config([rule("r", ["a", "b"])])
    state = FakeState(unavailable={"a": "circuit open until 12:00:00"})
    d, _ = run(cfg, state=state)
    assert d.model == "b"
    assert d.rejected == {"a": "circuit open until 12:00:00"}


def test_max_cost_uses_the_estimate(make_config):
    cfg = make_config(
        [rule("r", ["pricey", "cheap"], max_cost=0.001)],
        models=[model("pricey", cost=(1000.0, 1000.0)), model("cheap", cost=(0.1, 0.1))],
    )
    d, cands = run(cfg, req("hello", max_tokens=100))
    assert d.model == "cheap"
    assert "over max_cost $0.001" in d.rejected["pricey"]
    # (5 in + 100 out) tokens at $0.1 per 1M
    assert cands[0].cost == pytest.approx((5 * 0.1 + 100 * 0.1) / 1e6)


def test_rule_without_survivors_falls_through_and_no_route_has_the_trace(make_config):
    cfg = make_config(
        [
            rule("first", ["a"], when={"use_case": "x"}),
            rule("second", ["b"], when={"use_case": "x"}),
        ]
    )
    state = FakeState(unavailable={"a": "budget spent"})
    d, _ = run(cfg, req(use_case="x"), state)
    assert d.rule == "second"
    assert d.rules[0].note == "no candidate left"
    state = FakeState(unavailable={"a": "budget spent", "b": "rate limited"})
    d, cands = run(cfg, req(use_case="x"), state)
    assert cands == [] and d.model is None and not d.served
    assert d.rejected == {"a": "rule first: budget spent", "b": "rule second: rate limited"}
    assert "chosen: none" in d.describe()


def test_no_rule_matches(make_config):
    d, cands = run(make_config([rule("only", ["a"], when={"use_case": "x"})]), req())
    assert cands == [] and d.rule is None and d.rules == ()


def test_strategy_ordered_keeps_file_order(make_config):
    d, _ = run(make_config([rule("r", ["c", "a", "b"])]))
    assert d.candidates == ("c", "a", "b")


def test_strategy_cheapest(make_config):
    cfg = make_config(
        [rule("r", ["a", "b", "c"], strategy="cheapest")],
        models=[model("a", cost=(5.0, 5.0)), model("b", cost=(1.0, 1.0)), model("c")],
    )
    assert run(cfg)[0].candidates == ("b", "a", "c")  # unknown price last


def test_strategy_fastest_prefers_measured_then_hints(make_config):
    cfg = make_config(
        [rule("r", ["a", "b", "c"], strategy="fastest")],
        models=[model("a"), model("b", latency_ms=300), model("c", latency_ms=100)],
    )
    assert run(cfg)[0].candidates == ("c", "b", "a")
    state = FakeState(latency={"a": 0.01})
    assert run(cfg, state=state)[0].candidates == ("a", "c", "b")


def test_strategy_round_robin_rotates(make_config):
    cfg = make_config([rule("r", ["a", "b", "c"], strategy="round_robin")])
    rs, state = RuleSet(cfg), NullState()
    firsts = [decide(rs, req(), state)[0].model for _ in range(6)]
    assert firsts == ["a", "b", "c", "a", "b", "c"]


def test_strategy_weighted_follows_weights(make_config):
    cfg = make_config([rule("r", ["a", "b"], strategy="weighted", weights={"a": 9.0, "b": 1.0})])
    rs, state = RuleSet(cfg), NullState()
    counts = collections.Counter(decide(rs, req(), state)[0].model for _ in range(2000))
    assert 0.85 < counts["a"] / 2000 < 0.95
    # every candidate stays in the list as a fallback
    assert set(decide(rs, req(), state)[0].candidates) == {"a", "b"}


def test_strategy_least_busy(make_config):
    cfg = make_config([rule("r", ["a", "b", "c"], strategy="least_busy")])
    state = FakeState(busy={"a": 3, "b": 1, "c": 2})
    assert run(cfg, state=state)[0].candidates == ("b", "c", "a")


def test_every_strategy_is_registered():
    assert set(STRATEGIES) == {
        "ordered",
        "cheapest",
        "fastest",
        "round_robin",
        "weighted",
        "least_busy",
    }


def test_describe_lists_rules_candidates_and_reasons(make_config):
    cfg = make_config(
        [rule("r", ["cloud", "a"])],
        models=[model("cloud", provider="openai"), model("a")],
        providers=[
            ProviderConfig("openai", "litellm", disabled_reason="OPENAI_API_KEY is not set"),
            ProviderConfig("echo", "mock"),
        ],
    )
    text = run(cfg)[0].describe()
    assert "rule r: matched, strategy ordered" in text
    assert "x  cloud: OPENAI_API_KEY is not set" in text
    assert "chosen: a via echo (rule r)" in text


TOOLS = frozenset({"tools"})


def test_every_rejection_has_a_kind_and_the_text_people_read(make_config):
    cfg = make_config(
        [
            rule(
                "r",
                ["cloud", "small", "plain", "pricey", "down", "unpriced", "ok"],
                max_cost=0.001,
            )
        ],
        models=[
            model("cloud", provider="openai"),
            model("small", context=10),
            model("plain"),
            model("pricey", cost=(1000.0, 1000.0), capabilities=TOOLS),
            model("down", capabilities=TOOLS),
            model("unpriced", capabilities=TOOLS),  # no cost: max_cost cannot hold it
            model("ok", capabilities=TOOLS, cost=(0.0, 0.0)),
        ],
        providers=[
            ProviderConfig("openai", "litellm", disabled_reason="OPENAI_API_KEY is not set"),
            ProviderConfig("echo", "mock"),
        ],
    )
    circuit = Rejection(RejectionKind.CIRCUIT, "circuit open until 12:00:00")
    d, _ = run(cfg, req("hello", tools=[{"type": "function"}]), FakeState({"down": circuit}))
    kinds = {m: why.kind for m, why in d.rejected.items()}
    assert kinds == {
        "cloud": RejectionKind.DISABLED,
        "small": RejectionKind.CONTEXT,
        "plain": RejectionKind.CAPABILITY,
        "pricey": RejectionKind.COST,
        "down": RejectionKind.CIRCUIT,
        "unpriced": RejectionKind.PRICE,
    }
    assert d.model == "ok"
    assert str(d.rejected["cloud"]) == "OPENAI_API_KEY is not set"
    assert type(str(d.rejected["down"])) is str


def test_rejections_keep_their_kind_when_no_rule_serves(make_config):
    cfg = make_config([rule("r", ["a"], max_cost=1e-12)], models=[model("a", cost=(1.0, 1.0))])
    d, _ = run(cfg)
    assert not d.served
    assert d.rejected["a"].kind is RejectionKind.COST
    assert d.rejected["a"].startswith("rule r: estimated cost")
    # a reason from a state that gave no kind is still a Rejection
    d, _ = run(make_config([rule("r", ["a"])]), state=FakeState({"a": "busy"}))
    assert d.rejected["a"].kind is RejectionKind.OTHER
    assert repr(d.rejected["a"]) == "Rejection(OTHER, 'rule r: busy')"

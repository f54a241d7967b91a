"""The rule engine: compile conditions once, match rules, filter and order candidates."""

from router.engine.decide import candidates, decide, effective_max_tokens
from router.engine.routing_state import NullState, RoutingState
from router.engine.ruleset import CompiledRule, RuleSet, Target
from router.engine.strategies import STRATEGIES, Candidate
from router.engine.templates import Template

__all__ = [
    "STRATEGIES",
    "Candidate",
    "CompiledRule",
    "NullState",
    "RoutingState",
    "RuleSet",
    "Target",
    "Template",
    "candidates",
    "decide",
    "effective_max_tokens",
]

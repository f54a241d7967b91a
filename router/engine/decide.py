"""Match, filter, order: the routing decision, without calling anything."""

from __future__ import annotations

from router.config.model import ModelConfig
from router.engine.routing_state import RoutingState
from router.engine.ruleset import PINNED_PREFIX, Ceiling, CompiledRule, RuleSet
from router.engine.spill import spill
from router.engine.strategies import Candidate
from router.errors import UnknownModel
from router.types import Decision, Rejection, RejectionKind, Request, RuleTrace, as_rejection

_NO_REJECTS: dict[str, Rejection] = {}


def effective_max_tokens(
    rule: CompiledRule, request: Request, default: int, model: ModelConfig | None = None
) -> int:
    """The one output-token figure of a request on `model` under `rule`: the request's
    `max_tokens`, else the rule's `params`, else the model's `max_output`, else the
    config's `default_max_tokens`. The context filter, cost, budget and rate limit use
    it, `explain` shows it and the adapter sends it."""
    if request.max_tokens:
        return request.max_tokens
    from_rule = rule.config.params.get("max_tokens")
    if from_rule:
        return int(from_rule)
    if model is not None and model.max_output:
        return model.max_output
    return default


def candidates(
    rule: CompiledRule,
    request: Request,
    state: RoutingState,
    default_max_tokens: int,
    ruleset: RuleSet | None = None,
    ceiling: Ceiling | None = None,
) -> tuple[list[Candidate], dict[str, Rejection]]:
    """Survivors of `rule`'s targets in strategy order, and {model: Rejection} for the rest.

    `ceiling`: the `max_cost` of another rule that holds here too (a pinned model's:
    `RuleSet.ceiling`) when `rule` has none of its own."""
    max_cost, whose = rule.config.max_cost, ""
    if max_cost is None and ceiling is not None:
        max_cost, whose = ceiling.max_cost, f" (rule {ceiling.rule}'s, which this request matches)"
    kept: list[Candidate] = []
    rejected: dict[str, Rejection] = {}
    for t in rule.targets:
        m = t.model
        max_tokens = effective_max_tokens(rule, request, default_max_tokens, m)
        needed = request.tokens + max_tokens
        if t.disabled is not None:
            rejected[m.name] = t.disabled
            continue
        if needed > m.context:
            rejected[m.name] = Rejection(
                RejectionKind.CONTEXT,
                f"context too small: needs {needed} tokens "
                f"({request.tokens} in + {max_tokens} out), has {m.context}",
            )
            continue
        if request.needs and not request.needs <= m.capabilities:
            missing = ", ".join(sorted(request.needs - m.capabilities))
            rejected[m.name] = Rejection(RejectionKind.CAPABILITY, f"missing capability: {missing}")
            continue
        reason = state.unavailable_reason(m.name, rule.name)
        if reason is not None:
            rejected[m.name] = as_rejection(reason)
            continue
        if m.cost is None and ruleset is not None and ruleset.needs_price(rule, m.name, max_cost):
            rejected[m.name] = Rejection(
                RejectionKind.PRICE,
                f"price unknown: {m.model} is not in litellm's price map, so "
                f"{'max_cost' + whose if max_cost is not None else 'a budget'} cannot hold it "
                "(declare `cost: {input, output}` per 1M tokens; 0 and 0 if free)",
            )
            continue
        cost = m.cost.estimate(request.tokens, max_tokens) if m.cost is not None else None
        if max_cost is not None and cost is not None and cost > max_cost:
            rejected[m.name] = Rejection(
                RejectionKind.COST,
                f"estimated cost ${cost:.6f} over max_cost ${max_cost:g}{whose}",
            )
            continue
        kept.append(Candidate(m, cost, t.weight))
    if len(kept) > 1:
        kept = rule.strategy(kept, rule.name, state)
    return kept, rejected


def hedge_note(after_ms: float, note: str = "") -> str:
    """The trace's word on a rule's `hedge:` (beside a spill-over's note, if any)."""
    words = f"hedge: after {after_ms:g} ms without an answer the next candidate starts beside it"
    return f"{note}; {words}" if note else words


def decide(
    ruleset: RuleSet, request: Request, state: RoutingState, *, version: int = 0
) -> tuple[Decision, list[Candidate]]:
    """The first matching rule that has a candidate left, in file order."""
    use_case = request.use_case
    if use_case is None and ruleset.detectors:
        use_case = ruleset.detect(request.text)
    default_max = ruleset.config.settings.default_max_tokens
    traces: list[RuleTrace] = []
    chosen = ruleset.chosen(request.model, request.rule)
    if isinstance(chosen, Rejection):
        raise _unknown_model(request, chosen, use_case, default_max, version)
    ceiling = ruleset.ceiling(request, use_case) if request.model is not None else None
    rules = ruleset.rules_for(use_case) if chosen is None else (chosen,)
    for rule in rules:
        if chosen is None and not rule.predicate(request, use_case):
            traces.append(RuleTrace(rule.name, False))
            continue
        kept, rejected = candidates(rule, request, state, default_max, ruleset, ceiling)
        strategy = rule.config.strategy
        if not kept:
            traces.append(RuleTrace(rule.name, True, (), rejected, strategy, "no candidate left"))
            continue
        note = ""
        if rule.config.spill is not None:
            kept, note = spill(rule.config.spill, kept, state)
        if rule.config.hedge is not None:
            note = hedge_note(rule.config.hedge.after_ms, note)
        names = tuple(c.model.name for c in kept)
        traces.append(RuleTrace(rule.name, True, names, rejected, strategy, note))
        first = kept[0].model
        decision = Decision(
            rule=rule.name,
            model=first.name,
            provider=first.provider,
            candidates=names,
            rejected=rejected or _NO_REJECTS,
            rules=tuple(traces),
            use_case=use_case,
            tokens=request.tokens,
            max_tokens=effective_max_tokens(rule, request, default_max, first),
            unpriced=tuple(c.model.name for c in kept if c.model.cost is None),
            config_version=version,
        )
        return decision, kept
    merged: dict[str, Rejection] = {}
    for t in traces:
        for model, why in t.rejected.items():
            if model not in merged:
                merged[model] = why.prefixed(f"rule {t.rule}: ")
    return (
        Decision(
            rule=None,
            model=None,
            provider=None,
            candidates=(),
            rejected=merged,
            rules=tuple(traces),
            use_case=use_case,
            tokens=request.tokens,
            max_tokens=request.max_tokens or default_max,
            config_version=version,
        ),
        [],
    )


def _unknown_model(
    request: Request, why: Rejection, use_case: str | None, default_max: int, version: int
) -> UnknownModel:
    """`model=` names nothing: a NoRouteError (and NotFound) with the trace to show it."""
    name = request.model or ""
    rejected = {name: why}
    trace = RuleTrace(PINNED_PREFIX + name, True, (), rejected, "ordered", "no such model")
    decision = Decision(
        rule=None,
        model=None,
        provider=None,
        candidates=(),
        rejected=rejected,
        rules=(trace,),
        use_case=use_case,
        tokens=request.tokens,
        max_tokens=request.max_tokens or default_max,
        config_version=version,
    )
    return UnknownModel(name, why.text, decision)

"""Spend policy, in one place: which models cost nothing, what a spent budget refuses,
and when a refusal is the caller's error (`on_budget: error`) rather than a reason to
serve with what is left (`on_budget: fallback`).

`BudgetTracker` (budgets.py) keeps the counters; this module decides with them. The
request path asks it three things:

    policy.refusal(model, rule)            # per candidate, lock-free: a Rejection or None
    policy.reserve(model, rule, estimate)  # per try: a Reservation, or the Rejection
    raise_if_budget_error(...)             # after deciding, and when a try is refused
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from router.config.model import Config, ModelConfig, ProviderConfig, RuleConfig
from router.errors import BudgetExceeded
from router.runtime.state.budgets import BudgetTracker, Reservation
from router.types import Decision, Rejection, RejectionKind

BUDGET = RejectionKind.BUDGET

# What a provider's adapter says of a model's price: `router.providers.serves_free`, which
# the runtime hands in (live state does not import adapters).
ServesFree = Callable[[ModelConfig, ProviderConfig], bool]


def is_free(
    model: ModelConfig, provider: ProviderConfig | None, serves_free: ServesFree | None
) -> bool:
    """A model that costs nothing is never held back by a budget: it is what
    `on_budget: fallback` falls back to. A YAML price decides when given; else the
    provider's capability (`Provider.free` / `serves_free`), when one is known."""
    if model.cost is not None:
        return model.cost.input == 0 and model.cost.output == 0
    return provider is not None and serves_free is not None and serves_free(model, provider)


class SpendPolicy:
    """Budgets applied to the models of one config; free models pass untouched."""

    def __init__(
        self, config: Config, tracker: BudgetTracker, serves_free: ServesFree | None = None
    ) -> None:
        self.tracker = tracker
        self._config = config
        self._serves_free = serves_free
        self._free: dict[str, bool] = {}  # asked once per model, when first needed

    def is_free(self, model: str) -> bool:
        known = self._free.get(model)
        if known is None:
            m = self._config.models.get(model)
            provider = self._config.providers.get(m.provider) if m is not None else None
            known = m is not None and is_free(m, provider, self._serves_free)
            self._free[model] = known  # one item store: readers never wait
        return known

    def refusal(self, model: str, rule: str | None) -> Rejection | None:
        """Why `model` may not spend more under `rule` (no lock, no I/O)."""
        why = self.tracker.reason(model, rule)
        if why is None or self.is_free(model):
            return None
        return Rejection(BUDGET, why)

    def reserve(self, model: str, rule: str | None, estimate: float) -> Reservation | Rejection:
        """Hold `estimate` against every budget that applies, or say which one is spent."""
        if self.tracker.empty or self.is_free(model):
            return Reservation(model, rule, 0.0, ())
        res = self.tracker.reserve(model, rule, estimate)
        if res is not None:
            return res
        return Rejection(BUDGET, self.tracker.reason(model, rule) or "budget spent")


def raise_if_budget_error(
    rule: RuleConfig, model: str, why: Rejection, decision: Decision | None
) -> None:
    """A try refused by a budget under `on_budget: error` is the caller's BudgetExceeded."""
    if why.kind is BUDGET and rule.on_budget == "error":
        raise BudgetExceeded(f"rule {rule.name}: {model}: {why}", decision)


def check_decision(decision: Decision, rules: Mapping[str, RuleConfig]) -> None:
    """`on_budget: error`: raise `BudgetExceeded` rather than serve with what a spent
    budget left over (a cheaper model, or the next rule).

    Raised when a budget took out a model ranked (in the rule's target order) before
    the one chosen, or when it left a matched rule with no candidate at all.
    """
    for trace in decision.rules:
        if not trace.matched or not trace.rejected:
            continue
        rule = rules.get(trace.rule)
        if rule is None or rule.on_budget != "error":
            continue
        spent = [(m, why) for m, why in trace.rejected.items() if why.kind is BUDGET]
        if spent and trace.rule == decision.rule and decision.model is not None:
            order = rule.targets
            chosen = order.index(decision.model) if decision.model in order else len(order)
            spent = [(m, w) for m, w in spent if m in order and order.index(m) < chosen]
        if spent:
            model, why = spent[0]
            raise BudgetExceeded(f"rule {trace.rule}: {model}: {why}", decision)


__all__ = [
    "ServesFree",
    "SpendPolicy",
    "check_decision",
    "is_free",
    "raise_if_budget_error",
]

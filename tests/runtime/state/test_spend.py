"""Spend policy decides by a rejection's kind, never by its wording."""

from __future__ import annotations

import pytest

from router.config.model import Budget, Config, Cost, ModelConfig, ProviderConfig, RuleConfig
from router.errors import BudgetExceeded
from router.providers import serves_free
from router.runtime.state.budgets import BudgetTracker, Reservation
from router.runtime.state.spend import SpendPolicy, check_decision, raise_if_budget_error
from router.runtime.state.usage import MemoryUsageStore, UsageRecord
from router.types import Decision, Rejection, RejectionKind, RuleTrace

STRICT = RuleConfig("strict", ("paid", "free"), on_budget="error")
LENIENT = RuleConfig("lenient", ("paid", "free"))


def config() -> Config:
    providers = {
        "cloud": ProviderConfig("cloud", "litellm"),
        "local": ProviderConfig("local", "llama_cpp"),
    }
    models = {
        "paid": ModelConfig("paid", "cloud", "openai/paid", cost=Cost(1, 1)),
        "free": ModelConfig("free", "local", "free.gguf"),
    }
    budgets = (Budget("global", None, daily=1.0),)
    return Config(providers, models, (STRICT, LENIENT), budgets=budgets)


def policy_spent() -> SpendPolicy:
    store = MemoryUsageStore()
    store.record(UsageRecord(1_700_000_000.0, "paid", "cloud", "strict", 1, 1, 2.0, "x"))
    cfg = config()
    tracker = BudgetTracker(cfg.budgets, store, clock=lambda: 1_700_000_100.0)
    return SpendPolicy(cfg, tracker, serves_free)


def test_a_spent_budget_refuses_paid_models_with_a_budget_kind() -> None:
    policy = policy_spent()
    why = policy.refusal("paid", "strict")
    assert why is not None and why.kind is RejectionKind.BUDGET
    assert why.startswith("budget spent: global daily $1.00")
    got = policy.reserve("paid", "strict", 0.1)
    assert isinstance(got, Rejection) and got.kind is RejectionKind.BUDGET
    assert policy.refusal("free", "strict") is None
    assert isinstance(policy.reserve("free", "strict", 0.1), Reservation)
    # without the providers' word on prices, a model with no YAML price is paid for
    unaware = SpendPolicy(config(), policy.tracker)
    assert isinstance(unaware.reserve("free", "strict", 0.1), Rejection)


def test_on_budget_error_reads_the_kind_not_the_text() -> None:
    worded_like_a_budget = Rejection(RejectionKind.OTHER, "budget spent (but not ours)")
    raise_if_budget_error(STRICT, "paid", worded_like_a_budget, None)  # no raise
    other_words = Rejection(RejectionKind.BUDGET, "team allowance used up")
    with pytest.raises(BudgetExceeded, match="rule strict: paid: team allowance used up"):
        raise_if_budget_error(STRICT, "paid", other_words, None)
    raise_if_budget_error(LENIENT, "paid", other_words, None)  # fallback: no raise


def _decision(why: Rejection) -> Decision:
    trace = RuleTrace("strict", True, ("free",), {"paid": why})
    return Decision("strict", "free", "local", ("free",), {"paid": why}, (trace,))


def test_check_decision_raises_only_for_a_budget_kind_ranked_before_the_choice() -> None:
    rules = {"strict": STRICT, "lenient": LENIENT}
    with pytest.raises(BudgetExceeded, match="paid: allowance"):
        check_decision(_decision(Rejection(RejectionKind.BUDGET, "allowance")), rules)
    check_decision(_decision(Rejection(RejectionKind.RATE_LIMIT, "budget spent?")), rules)

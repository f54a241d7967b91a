"""Rules compiled once per config: predicates, targets, templates, an index by use case."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from router.config.model import Config, Cost, ModelConfig, ProviderConfig, RuleConfig
from router.engine.conditions import (
    Predicate,
    compile_condition,
    indexed_use_cases,
    words_pattern,
)
from router.engine.strategies import STRATEGIES, Strategy
from router.engine.templates import Template


@dataclass(frozen=True, slots=True)
class Target:
    model: ModelConfig
    disabled: str | None  # the provider's disabled reason, fixed for this config
    weight: float


@dataclass(frozen=True, slots=True)
class CompiledRule:
    config: RuleConfig
    position: int
    predicate: Predicate
    targets: tuple[Target, ...]
    strategy: Strategy
    system: Template | None
    prompt: Template | None

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True, slots=True)
class Detector:
    use_case: str
    pattern: re.Pattern[str] | None
    words: re.Pattern[str] | None

    def matches(self, text: str) -> bool:
        if self.pattern is not None and self.pattern.search(text):
            return True
        return self.words is not None and self.words.search(text) is not None


# An ad-hoc `model="<provider>/<id>"` has no window in the config: the provider checks.
AD_HOC_CONTEXT = 2**31 - 1


class RuleSet:
    """The compiled rules of one config. Immutable once built."""

    def __init__(self, config: Config) -> None:
        self.config = config
        rules: list[CompiledRule] = []
        for pos, rc in enumerate(config.rules):
            rules.append(_compile_rule(config, rc, pos))
        self.rules: tuple[CompiledRule, ...] = tuple(rules)
        self.by_name: Mapping[str, CompiledRule] = {r.name: r for r in rules}
        self.detectors: tuple[Detector, ...] = tuple(
            Detector(
                uc.name,
                re.compile(uc.matches) if uc.matches else None,
                words_pattern(uc.contains) if uc.contains else None,
            )
            for uc in config.use_cases.values()
        )
        # Index: for each use case a rule names at its top level, the rules that can
        # match it (its own plus the unrestricted ones), in file order. Requests with
        # other use cases only look at the unrestricted rules.
        limited: dict[str, list[CompiledRule]] = {}
        generic: list[CompiledRule] = []
        for r in rules:
            ucs = indexed_use_cases(r.config.when)
            if ucs is None:
                generic.append(r)
            else:
                for uc in ucs:
                    limited.setdefault(uc, []).append(r)
        self.generic: tuple[CompiledRule, ...] = tuple(generic)
        self.index: Mapping[str, tuple[CompiledRule, ...]] = {
            uc: tuple(sorted(own + generic, key=lambda r: r.position))
            for uc, own in limited.items()
        }
        self._pinned: dict[str, Target] = {}  # model= names, resolved once
        # Prices a `model="<provider>/<id>"` may have (the runtime knows the price map).
        self.price_of: Callable[[ModelConfig, ProviderConfig], Cost | None] | None = None
        self._budgeted = _budget_scopes(config)

    def pinned(self, rule: CompiledRule, name: str) -> CompiledRule:
        """`rule` with one target: the model `model=` names.

        A configured model's name, or "<provider>/<the provider's own model id>" for a
        model the config does not list (its window and price are then unknown here:
        the provider says). Anything else is a target rejected with the reason.
        """
        target = self._pinned.get(name)
        if target is None:
            target = self._pinned[name] = self._pin(name)
        return replace(rule, targets=(target,), strategy=STRATEGIES["ordered"])

    def _pin(self, name: str) -> Target:
        config = self.config
        model = config.models.get(name)
        if model is None:
            provider_name, sep, model_id = name.partition("/")
            if not sep or not model_id or provider_name not in config.providers:
                known = ", ".join(sorted(config.models)) or "none"
                why = (
                    f"unknown model '{name}': not in the config (models: {known}), and not "
                    "'<provider>/<model id>' with a configured provider"
                )
                return Target(ModelConfig(name, provider_name, name), why, 1.0)
            model = ModelConfig(name, provider_name, model_id, context=AD_HOC_CONTEXT)
            if self.price_of is not None:
                model = replace(model, cost=self.price_of(model, config.providers[provider_name]))
        provider = config.providers[model.provider]
        return Target(model, provider.disabled_reason, model.weight)

    def needs_price(self, rule: CompiledRule, model: str) -> bool:
        """Whether a price must be known to serve `model` under `rule`: the rule has a
        `max_cost`, or a budget covers the request (and the config does not opt out)."""
        if self.config.settings.allow_unknown_prices:
            return False
        if rule.config.max_cost is not None:
            return True
        scopes = self._budgeted
        return "global" in scopes or f"rule:{rule.name}" in scopes or f"model:{model}" in scopes

    def detect(self, text: str) -> str | None:
        for d in self.detectors:
            if d.matches(text):
                return d.use_case
        return None

    def rules_for(self, use_case: str | None) -> tuple[CompiledRule, ...]:
        if use_case is None:
            return self.generic
        return self.index.get(use_case, self.generic)


def _budget_scopes(config: Config) -> frozenset[str]:
    return frozenset(
        "global" if b.scope == "global" else f"{b.scope}:{b.name}" for b in config.budgets
    )


def _compile_rule(config: Config, rc: RuleConfig, pos: int) -> CompiledRule:
    targets = []
    for name in rc.targets:
        model = config.models[name]
        provider = config.providers[model.provider]
        targets.append(Target(model, provider.disabled_reason, rc.weights.get(name, model.weight)))
    return CompiledRule(
        config=rc,
        position=pos,
        predicate=compile_condition(rc.when),
        targets=tuple(targets),
        strategy=STRATEGIES[rc.strategy],
        system=Template(rc.system, f"rule {rc.name}: system") if rc.system else None,
        prompt=Template(rc.prompt, f"rule {rc.name}: prompt") if rc.prompt else None,
    )

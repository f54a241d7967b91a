"""Rules compiled once per config: predicates, targets, templates, an index by use case.

`RuleSet.build(config)` is the one place rules are compiled and checked: a template
that does not compile, a condition that cannot be built or a use case's regex that does
not compile is a `ConfigError` naming file, line and key, every such problem at once.
(The loader reports bad regexes too, earlier and at the key's own line, with the rest of
a file's mistakes; a Config built in code reaches the engine without that check.)
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from router.config.model import (
    Config,
    ModelConfig,
    ProviderConfig,
    RuleConfig,
    UseCaseConfig,
    Where,
)
from router.config.patterns import Pattern, PatternError, compile_pattern
from router.engine.conditions import (
    Predicate,
    compile_condition,
    indexed_use_cases,
    words_pattern,
)
from router.engine.strategies import STRATEGIES, Strategy
from router.engine.templates import Template, template_error
from router.errors import ConfigError, ConfigIssue, NotFound
from router.types import Rejection, RejectionKind, Request


@dataclass(frozen=True, slots=True)
class Target:
    model: ModelConfig
    disabled: Rejection | None  # the provider's disabled reason, fixed for this config
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
    pattern: Pattern | None
    words: re.Pattern[str] | None

    def matches(self, text: str) -> bool:
        if self.pattern is not None and self.pattern.search(text):
            return True
        return self.words is not None and self.words.search(text) is not None


PINNED_PREFIX = "model:"  # the rule name a request that pins a model is served under
AD_HOC_KEPT = 1024  # `<provider>/<id>` rules kept once made; past that, made per request

# What the adapters know of a `<provider>/<id>` model the config does not list: the id
# to send, a price and a window from litellm's map; None when the provider's type takes
# only listed models (a local GGUF is a file path: no caller may name one). `Snapshot.build`
# hands it in (the engine imports no adapter); without it the model has the defaults of
# a YAML entry that names only `provider` and `model`, and no price.
DescribeModel = Callable[[ModelConfig, ProviderConfig], ModelConfig | None]


@dataclass(frozen=True, slots=True)
class Ceiling:
    """The `max_cost` a pinned request keeps: that of the rule it would have matched."""

    rule: str
    max_cost: float


class RuleSet:
    """The compiled rules of one config. Immutable once built."""

    @classmethod
    def build(cls, config: Config) -> RuleSet:
        """Compile and check every rule once; `ConfigError` lists each bad one at its line."""
        return cls(config)

    def __init__(self, config: Config) -> None:
        self.config = config
        rules: list[CompiledRule] = []
        issues: list[ConfigIssue] = []
        for pos, rc in enumerate(config.rules):
            compiled = _compile_rule(config, rc, pos, issues)
            if compiled is not None:
                rules.append(compiled)
        detectors = [_detector(uc, issues) for uc in config.use_cases.values()]
        if issues:
            raise ConfigError(issues)
        self.detectors: tuple[Detector, ...] = tuple(d for d in detectors if d is not None)
        self.rules: tuple[CompiledRule, ...] = tuple(rules)
        self.by_name: Mapping[str, CompiledRule] = {r.name: r for r in rules}
        self.configs: Mapping[str, RuleConfig] = {r.name: r.config for r in rules}
        # One rule per model for requests that pin it: the model alone, no templates.
        self.pinned: Mapping[str, CompiledRule] = {}
        pinned: dict[str, CompiledRule] = {}
        for name in config.models:
            one = _compile_rule(config, RuleConfig(PINNED_PREFIX + name, (name,)), -1, issues)
            if one is not None:
                pinned[name] = one
        self.pinned = pinned
        self._ad_hoc: dict[str, CompiledRule] = {}
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
        self.describe: DescribeModel | None = None
        self._budgeted = _budget_scopes(config)

    def needs_price(self, rule: CompiledRule, model: str, max_cost: float | None = None) -> bool:
        """Whether a price must be known to serve `model` under `rule`: a `max_cost`
        holds, or a budget covers the request (and the config does not opt out)."""
        if self.config.settings.allow_unknown_prices:
            return False
        if rule.config.max_cost is not None or max_cost is not None:
            return True
        scopes = self._budgeted
        return "global" in scopes or f"rule:{rule.name}" in scopes or f"model:{model}" in scopes

    def detect(self, text: str) -> str | None:
        for d in self.detectors:
            if d.matches(text):
                return d.use_case
        return None

    def chosen(self, model: str | None, rule: str | None) -> CompiledRule | Rejection | None:
        """The one rule a request pins (`model=`) or forces (`rule=`); None when neither,
        the UNKNOWN_MODEL rejection for a `model=` that names nothing (see `pinned_rule`)."""
        if model is not None:
            return self.pinned_rule(model)
        if rule is not None:
            found = self.by_name.get(rule)
            if found is None:
                raise NotFound("rule", rule, list(self.by_name))
            return found
        return None

    def pinned_rule(self, name: str) -> CompiledRule | Rejection:
        """The rule `model=name` is served under (`model:<name>`, the model alone).

        A configured model's name wins; else `<provider>/<the provider's model id>` with a
        configured provider calls a model the YAML does not list, as if it had an entry
        `{provider: <provider>, model: <id>}` (price and window from litellm's map when
        it knows them; no capabilities, so none is filtered on). Anything else is the
        UNKNOWN_MODEL rejection, whose text lists what is known.
        """
        found = self.pinned.get(name) or self._ad_hoc.get(name)
        if found is not None:
            return found
        provider_name, sep, model_id = name.partition("/")
        provider = self.config.providers.get(provider_name) if sep and model_id else None
        if provider is None:
            return Rejection(RejectionKind.UNKNOWN_MODEL, _unknown_model(self.config, name))
        listed = ModelConfig(name, provider_name, model_id)
        model = listed if self.describe is None else self.describe(listed, provider)
        if model is None:
            return Rejection(
                RejectionKind.UNKNOWN_MODEL,
                f"unknown model '{name}': provider {provider_name} ({provider.type}) serves "
                f"only the models the config lists ({_models_of(self.config, provider_name)})",
            )
        why = provider.disabled_reason
        disabled = None if why is None else Rejection(RejectionKind.DISABLED, why)
        rule = CompiledRule(
            config=RuleConfig(PINNED_PREFIX + name, (name,)),
            position=-1,
            predicate=compile_condition(None),
            targets=(Target(model, disabled, model.weight),),
            strategy=STRATEGIES["ordered"],
            system=None,
            prompt=None,
        )
        if len(self._ad_hoc) < AD_HOC_KEPT:  # names come from callers: keep a bounded few
            self._ad_hoc[name] = rule
        return rule

    def ceiling(self, request: Request, use_case: str | None) -> Ceiling | None:
        """The `max_cost` a pinned request is held to: that of the first rule its
        `when:` matches (the rule that would have served it). Pinning picks the model,
        not the price the config allows for such a request."""
        for rule in self.rules_for(use_case):
            if rule.predicate(request, use_case):
                cap = rule.config.max_cost
                return None if cap is None else Ceiling(rule.name, cap)
        return None

    def rule_named(self, name: str) -> CompiledRule | None:
        """A config rule by name, or the pinned rule of a model (`model:<name>`)."""
        found = self.by_name.get(name)
        if found is None and name.startswith(PINNED_PREFIX):
            pinned = self.pinned_rule(name[len(PINNED_PREFIX) :])
            found = pinned if isinstance(pinned, CompiledRule) else None
        return found

    def rules_for(self, use_case: str | None) -> tuple[CompiledRule, ...]:
        if use_case is None:
            return self.generic
        return self.index.get(use_case, self.generic)


def _unknown_model(config: Config, name: str) -> str:
    """Why `model=name` names nothing, with what would: for `UnknownModel`'s message."""
    models = sorted(config.models)
    providers = sorted(config.providers)
    prefix, sep, _ = name.partition("/")
    text = (
        f"unknown model '{name}': not a configured model "
        f"(known: {', '.join(models[:20]) or 'none'}) nor '<provider>/<model id>' "
        f"with a configured provider (providers: {', '.join(providers) or 'none'})"
    )
    close = difflib.get_close_matches(name, models, n=1)
    if close:
        return f"{text}; did you mean '{close[0]}'?"
    if sep and prefix:
        guess = difflib.get_close_matches(prefix, providers, n=1)
        if guess:
            return f"{text}; did you mean '{guess[0]}/{name[len(prefix) + 1 :]}'?"
    elif providers:
        return f"{text}; e.g. model='{providers[0]}/{name}'"
    return text


def _models_of(config: Config, provider: str) -> str:
    names = sorted(n for n, m in config.models.items() if m.provider == provider)
    return ", ".join(names[:20]) or "none"


def _budget_scopes(config: Config) -> frozenset[str]:
    return frozenset(
        "global" if b.scope == "global" else f"{b.scope}:{b.name}" for b in config.budgets
    )


def _detector(uc: UseCaseConfig, issues: list[ConfigIssue]) -> Detector | None:
    try:
        pattern = compile_pattern(uc.matches) if uc.matches else None  # RE2: linear time
    except PatternError as exc:
        issues.append(_issue(uc.where, "matches", str(exc)))
        return None
    return Detector(uc.name, pattern, words_pattern(uc.contains) if uc.contains else None)


def _issue(where: Where, key: str, message: str) -> ConfigIssue:
    pointer = f"{where.pointer}.{key}" if where.pointer else key
    return ConfigIssue(message, where.file, where.line, None, pointer)


def _template(rc: RuleConfig, key: str, issues: list[ConfigIssue]) -> Template | None:
    source: str | None = getattr(rc, key)
    if not source:
        return None
    try:
        return Template(source, f"rule {rc.name}: {key}")
    except Exception as exc:  # jinja2's syntax errors, translated here
        message, _ = template_error(exc)
        issues.append(_issue(rc.where, key, f"bad template: {message}"))
        return None


def _compile_rule(
    config: Config, rc: RuleConfig, pos: int, issues: list[ConfigIssue]
) -> CompiledRule | None:
    """The compiled rule, or None with its problems added to `issues`."""
    found = len(issues)
    system = _template(rc, "system", issues)
    prompt = _template(rc, "prompt", issues)
    try:
        predicate = compile_condition(rc.when)
    except (ValueError, re.error) as exc:
        issues.append(_issue(rc.where, "when", f"bad condition: {exc}"))
    if len(issues) > found:
        return None
    targets = []
    for name in rc.targets:
        model = config.models[name]
        provider = config.providers[model.provider]
        why = provider.disabled_reason
        disabled = None if why is None else Rejection(RejectionKind.DISABLED, why)
        targets.append(Target(model, disabled, rc.weights.get(name, model.weight)))
    return CompiledRule(
        config=rc,
        position=pos,
        predicate=predicate,
        targets=tuple(targets),
        strategy=STRATEGIES[rc.strategy],
        system=system,
        prompt=prompt,
    )

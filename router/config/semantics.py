"""Checks the schema cannot express: names that must refer to something, rules that
can never match, regexes that do not compile. Run on the merged sections after the
schema, and written defensively, so a file with schema errors still gets these too
and every problem is reported at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.config import packages
from router.config.model import mask_url
from router.config.paths import PathRefused, model_file
from router.config.patterns import PatternError, check_pattern
from router.config.sources import Issues, Source, index, join, locate


@dataclass(slots=True)
class BudgetEntry:
    """One budget from either form; `data` holds scope, name, daily, monthly."""

    pointer: str
    data: dict[str, Any]
    name_pointer: str  # where the name was written: `name:` (list form) or the key
    # The file it came from: in the mapping form, two files write the same pointer.
    source: Source | None = None


@dataclass(slots=True)
class Merged:
    """All files' sections merged: mappings by name (first wins), lists concatenated."""

    providers: dict[str, Any] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    rules: list[Any] = field(default_factory=list)  # rules[i] is written at pointer rules[i]
    use_cases: dict[str, Any] = field(default_factory=dict)
    tests: list[Any] = field(default_factory=list)
    budgets: list[BudgetEntry] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    unset: dict[str, str] = field(default_factory=dict)  # provider -> first unset variable


def check(merged: Merged, sources: Sequence[Source], issues: Issues) -> None:
    """Report every semantic problem in `merged`."""
    _models(merged, issues)
    _use_cases(merged, issues)
    rule_at = _rules(merged, sources, issues)
    _fallbacks(merged, rule_at, issues)
    _tests(merged, rule_at, issues)
    _budgets(merged, rule_at, sources, issues)
    _state(merged, issues)
    _server_keys(merged, issues)


def _hint(word: str, known: Mapping[str, Any] | Sequence[str]) -> str:
    if len(known) > 2000:  # difflib is quadratic-ish; a typo among thousands gets no hint
        return ""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _unknown(what: str, name: str, known: Mapping[str, Any] | Sequence[str]) -> str:
    return f"unknown {what} '{name}'" + _hint(name, known)


# Keys every model takes, whatever its provider's type; a type adds its own
# (schemas/config.schema.json, `$defs/<type>_model`).
MODEL_KEYS = (
    "provider",
    "model",
    "context",
    "cost",
    "capabilities",
    "max_output",
    "weight",
    "latency_ms",
    "rpm",
    "tpm",
    "breaker",
)


def model_keys(provider_type: str) -> tuple[str, ...] | None:
    """Every key a model of a `provider_type` provider may have; None: not declared."""
    from router.config.schema import schema

    extra = schema().get("$defs", {}).get(f"{provider_type}_model")
    if not isinstance(extra, Mapping):
        return None
    return (*MODEL_KEYS, *extra.get("properties", {}))


def _models(merged: Merged, issues: Issues) -> None:
    for name, model in merged.models.items():
        if not isinstance(model, dict):
            continue
        provider = model.get("provider")
        if isinstance(provider, str) and provider not in merged.providers:
            pointer = join(join("models", name), "provider")
            issues.at(pointer, _unknown("provider", provider, merged.providers))
            continue
        if isinstance(provider, str):
            _model_path(name, model, merged.providers[provider], issues)
        kind = merged.providers.get(provider, {}) if isinstance(provider, str) else None
        kind = kind.get("type") if isinstance(kind, dict) else None
        known = model_keys(kind) if isinstance(kind, str) else None
        if known is None:
            continue
        for key in model:
            if key not in known and not key.startswith("x-"):
                alias = _MODEL_ALIASES.get(key)
                hint = f" (did you mean '{alias}'?)" if alias else _hint(key, known)
                issues.at(
                    join(join("models", name), key),
                    f"unknown key '{key}' for a model of a {kind} provider{hint}",
                )


# Names other tools use for a model's keys.
_MODEL_ALIASES = {
    "max_tokens": "max_output",
    "max_token": "max_output",
    "max_output_tokens": "max_output",
    "context_length": "context",
    "context_window": "context",
    "max_input_tokens": "context",
    "price": "cost",
    "pricing": "cost",
}


def _model_path(name: str, model: dict[str, Any], provider: Any, issues: Issues) -> None:
    """A local model's file must stay inside models_dir (see `router.config.paths`)."""
    if not isinstance(provider, dict) or provider.get("type") != "llama_cpp":
        return
    key = "path" if model.get("path") else "model"
    written = model.get(key) or name
    models_dir = provider.get("models_dir")
    if not isinstance(written, str) or not isinstance(models_dir, (str, type(None))):
        return  # the schema reports the type
    try:
        model_file(models_dir, written)
    except PathRefused as exc:
        pointer = join(join("models", name), key) if key in model else join("models", name)
        issues.at(pointer, str(exc))
    package = model.get("package")
    if isinstance(package, str):
        try:
            packages.check(package)
        except packages.PackageRefused as exc:
            issues.at(join(join("models", name), "package"), str(exc))


def _use_cases(merged: Merged, issues: Issues) -> None:
    for name, uc in merged.use_cases.items():
        pointer = join("use_cases", name)
        if uc is None or (
            isinstance(uc, dict) and not uc.get("matches") and not uc.get("contains")
        ):
            issues.at(pointer, "a use case needs `matches` (a regex) or `contains` (words)")
        elif isinstance(uc, dict):
            _regex(uc.get("matches"), join(pointer, "matches"), issues)


def _regex(pattern: Any, pointer: str, issues: Issues) -> None:
    if not isinstance(pattern, str):
        return
    try:
        check_pattern(pattern)  # on the engine requests use: RE2
    except PatternError as exc:
        issues.at(pointer, str(exc))


def _conditions(when: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """(pointer, regex) for every `matches` in a condition tree."""
    if not isinstance(when, dict):
        return
    if "matches" in when:
        yield join(pointer, "matches"), when["matches"]
    for key in ("any", "all"):
        items = when.get(key)
        if isinstance(items, list):
            for i, sub in enumerate(items):
                yield from _conditions(sub, index(join(pointer, key), i))
    if "not" in when:
        yield from _conditions(when["not"], join(pointer, "not"))


def _place(
    sources: Sequence[Source],
    pointer: str,
    here: str,
    src_of: Source | None = None,
    here_of: Source | None = None,
) -> str:
    """'line 12' in the same file as `here`, 'other.yaml:12' elsewhere.

    `src_of` / `here_of`: the files the pointers were written in, when known.
    """
    src, pos = locate(sources, pointer, src_of)
    here_src, _ = locate(sources, here, here_of)
    line = pos[0] if pos else "?"
    if src is not None and src is not here_src:
        return f"{src.label}:{line}"
    return f"line {line}"


def _rules(merged: Merged, sources: Sequence[Source], issues: Issues) -> dict[str, int]:
    """Checks each rule; returns rule name -> index of its first definition."""
    rule_at: dict[str, int] = {}
    catch_all: tuple[str, int] | None = None
    models = merged.models
    if not merged.rules:
        issues.at(
            "rules", "the config has no rules (a last rule without `when` serves every request)"
        )
    for i, rule in enumerate(merged.rules):
        if not isinstance(rule, dict):
            continue
        pointer = index("rules", i)
        name = rule.get("name")
        if isinstance(name, str):
            if name in rule_at:
                first = index("rules", rule_at[name])
                issues.at(
                    join(pointer, "name"),
                    f"duplicate rule '{name}' (first defined at {_place(sources, first, pointer)})",
                )
            else:
                rule_at[name] = i
        if catch_all is not None:
            other, at = catch_all
            issues.at(
                pointer,
                f"rule '{name}' can never match: rule '{other}' "
                f"({_place(sources, index('rules', at), pointer)}) has no `when` "
                "and serves every request before it",
            )
        elif not rule.get("when"):
            catch_all = (str(name), i)
        targets = rule.get("targets")
        listed: set[str] = set()
        if isinstance(targets, list):
            tpointer = join(pointer, "targets")
            for j, target in enumerate(targets):
                if not isinstance(target, str):
                    continue
                if target not in models:
                    issues.at(index(tpointer, j), _unknown("model", target, models))
                elif target in listed:
                    issues.at(index(tpointer, j), f"model '{target}' is listed twice")
                listed.add(target)
        weights = rule.get("weights")
        if isinstance(weights, dict) and isinstance(targets, list):
            for model in weights:
                if model not in listed:
                    issues.at(
                        join(join(pointer, "weights"), model),
                        f"'{model}' is not one of this rule's targets"
                        + _hint(model, sorted(listed)),
                    )
        for rpointer, pattern in _conditions(rule.get("when"), join(pointer, "when")):
            _regex(pattern, rpointer, issues)
        _hedge(rule, merged.settings, pointer, issues)
    return rule_at


def _hedge(rule: dict[str, Any], settings: dict[str, Any], pointer: str, issues: Issues) -> None:
    """A hedge that waits as long as the whole deadline would never start."""
    hedge = rule.get("hedge")
    after = hedge.get("after_ms") if isinstance(hedge, dict) else None
    deadline = rule.get("deadline", settings.get("deadline", 120.0))
    numbers = (int, float)
    if not isinstance(after, numbers) or not isinstance(deadline, numbers) or deadline <= 0:
        return
    if after >= deadline * 1000:
        issues.at(
            join(join(pointer, "hedge"), "after_ms"),
            f"a hedge after {after:g} ms never starts: the deadline is {deadline:g} s",
        )


def _fallbacks(merged: Merged, rule_at: dict[str, int], issues: Issues) -> None:
    follows: dict[str, str] = {}
    for i, rule in enumerate(merged.rules):
        if not isinstance(rule, dict) or not isinstance(rule.get("fallback"), str):
            continue
        name, fallback = rule.get("name"), rule["fallback"]
        pointer = join(index("rules", i), "fallback")
        if fallback not in rule_at:
            issues.at(pointer, _unknown("rule", fallback, rule_at))
        elif fallback == name:
            issues.at(pointer, "a rule cannot fall back to itself")
        elif isinstance(name, str) and rule_at.get(name) == i:
            follows[name] = fallback
    reported: set[str] = set()
    for start in follows:
        path = [start]
        while path[-1] in follows and follows[path[-1]] not in path:
            path.append(follows[path[-1]])
        nxt = follows.get(path[-1])
        if nxt is not None and nxt == start and not reported.intersection(path):
            reported.update(path)
            pointer = join(index("rules", rule_at[start]), "fallback")
            issues.at(pointer, "fallbacks go round in a circle: " + " -> ".join([*path, start]))


def _tests(merged: Merged, rule_at: dict[str, int], issues: Issues) -> None:
    known: dict[str, Mapping[str, Any] | Sequence[str]] = {
        "model": merged.models,
        "rule": list(rule_at),
        "provider": merged.providers,
    }
    for i, test in enumerate(merged.tests):
        expect = test.get("expect") if isinstance(test, dict) else None
        if not isinstance(expect, dict):
            continue
        for what, names in known.items():
            name = expect.get(what)
            if isinstance(name, str) and name not in names:
                pointer = join(join(index("tests", i), "expect"), what)
                issues.at(pointer, f"expects an {_unknown(what, name, names)}")


def _budgets(
    merged: Merged, rule_at: dict[str, int], sources: Sequence[Source], issues: Issues
) -> None:
    seen: dict[tuple[str, str], BudgetEntry] = {}
    for budget in merged.budgets:
        pointer, entry, src = budget.pointer, budget.data, budget.source
        scope, name = entry.get("scope"), entry.get("name")
        if "daily" not in entry and "monthly" not in entry:
            issues.at(pointer, "a budget needs `daily` or `monthly` (USD)", src)
        if scope == "global" and name is not None:
            issues.at(join(pointer, "name"), "a global budget takes no name", src)
        elif scope in ("rule", "model") and not isinstance(name, str):
            issues.at(pointer, f"a {scope} budget needs the {scope}'s `name`", src)
        elif scope == "rule" and name not in rule_at:
            issues.at(budget.name_pointer, _unknown("rule", str(name), list(rule_at)), src)
        elif scope == "model" and name not in merged.models:
            issues.at(budget.name_pointer, _unknown("model", str(name), merged.models), src)
        key = (str(scope), str(name))
        first = seen.setdefault(key, budget)
        if first is not budget:
            where = _place(sources, first.pointer, pointer, first.source, src)
            issues.at(pointer, f"duplicate budget (first at {where})", src)


def _state(merged: Merged, issues: Issues) -> None:
    """`settings.state`: memory or a Redis URL (the schema checks only that it is text)."""
    raw = merged.settings.get("state") if isinstance(merged.settings, dict) else None
    pointer = join("settings", "state")
    if isinstance(raw, dict):
        raw, pointer = raw.get("url"), join(pointer, "url")
    _redis_url(raw, pointer, issues)
    cache = merged.settings.get("cache") if isinstance(merged.settings, dict) else None
    if not isinstance(cache, dict) or cache.get("backend") != "redis":
        return
    url, at = cache.get("url"), join(join("settings", "cache"), "url")
    if url is None and (not isinstance(raw, str) or raw == "memory"):
        issues.at(
            join(join("settings", "cache"), "backend"),
            "backend redis needs a Redis: give settings.cache.url or settings.state a redis:// URL",
        )
    elif url == "memory":
        issues.at(at, "expected redis://host:port/db or rediss://host:port/db, got memory")
    else:
        _redis_url(url, at, issues)


def _redis_url(raw: Any, pointer: str, issues: Issues) -> None:
    if not isinstance(raw, str) or raw == "memory":
        return
    scheme, sep, rest = raw.partition("://")
    if scheme not in ("redis", "rediss") or not sep or not rest:
        shown = mask_url(raw) if sep else "(not a URL)"
        issues.at(
            pointer,
            f"expected memory, redis://host:port/db or rediss://host:port/db, got {shown}",
        )


def _server_keys(merged: Merged, issues: Issues) -> None:
    keys = merged.server.get("keys")
    if not isinstance(keys, list):
        return
    rules = {r.get("name") for r in merged.rules if isinstance(r, dict)}
    names: dict[str, int] = {}
    values: dict[str, int] = {}
    for i, entry in enumerate(keys):
        if not isinstance(entry, dict):
            continue
        pointer = index(join("server", "keys"), i)
        name, value = entry.get("name"), entry.get("key")
        if isinstance(name, str):
            if name in names:
                issues.at(
                    join(pointer, "name"),
                    f"key name '{name}' used twice (also keys[{names[name]}])",
                )
            names.setdefault(name, i)
        if isinstance(value, str):
            if value in values:  # never quote the key itself
                issues.at(join(pointer, "key"), f"the same key as keys[{values[value]}]")
            values.setdefault(value, i)
        for j, model in enumerate(entry.get("models") or []):
            if isinstance(model, str) and model not in merged.models:
                issues.at(
                    index(join(pointer, "models"), j), _unknown("model", model, merged.models)
                )
        for j, rule in enumerate(entry.get("rules") or []):
            if isinstance(rule, str) and rule not in rules:
                known = [r for r in rules if isinstance(r, str)]
                issues.at(index(join(pointer, "rules"), j), _unknown("rule", rule, known))

"""What a reload changed, in data and in words.

`diff_configs(old, new)` compares two loaded configs by name: rules, models,
providers (and, in `other`, use cases, budgets, settings and routing tests).
Where an element was written (`where`) is not a change: moving a rule down a file
changes its line, not the routing. Rule order is, since the first match wins.

Provider changes name the fields that changed and never their values: a key, a
header or a URL may hold a secret.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from router.config.model import (
    Budget,
    Config,
    Cost,
    ModelConfig,
    ProviderConfig,
    RuleConfig,
    UseCaseConfig,
)
from router.secrets import Secret


def _no_changes() -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ConfigChanges:
    """The difference between two configs. `*_changed` map a name to readable changes."""

    rules_added: tuple[str, ...] = ()
    rules_removed: tuple[str, ...] = ()
    rules_changed: Mapping[str, tuple[str, ...]] = field(default_factory=_no_changes)
    rules_reordered: bool = False
    rule_order: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())  # (old, new) when reordered
    models_added: tuple[str, ...] = ()
    models_removed: tuple[str, ...] = ()
    models_changed: Mapping[str, tuple[str, ...]] = field(default_factory=_no_changes)
    providers_added: tuple[str, ...] = ()
    providers_removed: tuple[str, ...] = ()
    # Field names only (api_key, api_base, settings.headers, ...), never values.
    providers_changed: Mapping[str, tuple[str, ...]] = field(default_factory=_no_changes)
    other: tuple[str, ...] = ()  # use cases, budgets, settings, tests: already in words

    def __post_init__(self) -> None:
        # Read-only views, so a subscriber cannot edit what the next one sees.
        for name in ("rules_changed", "models_changed", "providers_changed"):
            value = getattr(self, name)
            if not isinstance(value, MappingProxyType):
                object.__setattr__(self, name, MappingProxyType(dict(value)))

    @property
    def is_empty(self) -> bool:
        return not (
            self.rules_added
            or self.rules_removed
            or self.rules_changed
            or self.rules_reordered
            or self.models_added
            or self.models_removed
            or self.models_changed
            or self.providers_added
            or self.providers_removed
            or self.providers_changed
            or self.other
        )

    @property
    def routing_changed(self) -> bool:
        """Whether a request could now be routed differently."""
        return not self.is_empty

    def describe(self) -> list[str]:
        """One line per change, e.g. ``rule coding: targets a, b -> b``."""
        lines: list[str] = []
        lines += [f"provider {p} added" for p in self.providers_added]
        lines += [f"provider {p} removed" for p in self.providers_removed]
        lines += [
            f"provider {p} changed ({', '.join(fs)})" for p, fs in self.providers_changed.items()
        ]
        lines += [f"model {m} added" for m in self.models_added]
        lines += [f"model {m} removed" for m in self.models_removed]
        lines += [f"model {m}: {c}" for m, cs in self.models_changed.items() for c in cs]
        lines += [f"rule {r} added" for r in self.rules_added]
        lines += [f"rule {r} removed" for r in self.rules_removed]
        lines += [f"rule {r}: {c}" for r, cs in self.rules_changed.items() for c in cs]
        if self.rules_reordered:
            old, new = self.rule_order
            lines.append(f"rule order: {', '.join(old)} -> {', '.join(new)}")
        lines += list(self.other)
        return lines

    def __str__(self) -> str:
        return "\n".join(self.describe()) or "no changes"


@dataclass(frozen=True, slots=True)
class ReloadEvent:
    """What subscribers of `on_reload` get after each reload, good or bad."""

    version: int  # the config version serving after this reload
    ok: bool
    changes: ConfigChanges | None  # None when the reload failed
    error: str | None  # file:line: key path: message, when it failed
    loaded_at: float  # time.time() of this attempt
    sha256: str  # of the files serving after this reload

    def describe(self) -> list[str]:
        """Readable lines: a headline, then each change (or the error)."""
        if not self.ok:
            return [f"reload failed, still serving version {self.version}: {self.error}"]
        head = f"reloaded: version {self.version} ({self.sha256[:12]})"
        changes = self.changes.describe() if self.changes is not None else []
        return [head, *(changes or ["no routing changes"])]


def diff_configs(old: Config | None, new: Config) -> ConfigChanges:
    """Compare two configs; `old` None means everything in `new` was added."""
    if old is None:
        return ConfigChanges(
            rules_added=tuple(r.name for r in new.rules),
            models_added=tuple(new.models),
            providers_added=tuple(new.providers),
        )
    old_rules = {r.name: r for r in old.rules}
    new_rules = {r.name: r for r in new.rules}
    r_added, r_removed, r_changed = _diff_named(old_rules, new_rules, _rule_changes)
    m_added, m_removed, m_changed = _diff_named(old.models, new.models, _model_changes)
    p_added, p_removed, p_changed = _diff_named(old.providers, new.providers, _provider_changes)

    common_old = tuple(r.name for r in old.rules if r.name in new_rules)
    common_new = tuple(r.name for r in new.rules if r.name in old_rules)
    reordered = common_old != common_new
    return ConfigChanges(
        rules_added=r_added,
        rules_removed=r_removed,
        rules_changed=r_changed,
        rules_reordered=reordered,
        rule_order=(common_old, common_new) if reordered else ((), ()),
        models_added=m_added,
        models_removed=m_removed,
        models_changed=m_changed,
        providers_added=p_added,
        providers_removed=p_removed,
        providers_changed=p_changed,
        other=tuple(_other_changes(old, new)),
    )


# -- per-kind comparisons -------------------------------------------------------------

T = TypeVar("T")


def _diff_named(
    old: Mapping[str, T],
    new: Mapping[str, T],
    changes: Callable[[T, T], list[str]],
) -> tuple[tuple[str, ...], tuple[str, ...], Mapping[str, tuple[str, ...]]]:
    added = tuple(n for n in new if n not in old)
    removed = tuple(n for n in old if n not in new)
    changed: dict[str, tuple[str, ...]] = {}
    for name, item in new.items():
        if name in old:
            found = changes(old[name], item)
            if found:
                changed[name] = tuple(found)
    return added, removed, MappingProxyType(changed)


def _rule_changes(a: RuleConfig, b: RuleConfig) -> list[str]:
    return _field_changes(a, b, opaque=("system", "prompt"))


def _model_changes(a: ModelConfig, b: ModelConfig) -> list[str]:
    # Per-model adapter settings may carry credentials: keys only.
    return _field_changes(a, b, keys_only=("settings",))


def _provider_changes(a: ProviderConfig, b: ProviderConfig) -> list[str]:
    names: list[str] = []
    for f in dataclasses.fields(a):
        if f.name in ("name", "where"):
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x == y:
            continue
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            names += [f"{f.name}.{k}" for k in _changed_keys(x, y)]
        elif dataclasses.is_dataclass(x) and type(x) is type(y):
            names += [
                f"{f.name}.{g.name}"
                for g in dataclasses.fields(x)
                if getattr(x, g.name) != getattr(y, g.name)
            ]
        else:
            names.append(f.name)
    return names


def _use_case_changes(a: UseCaseConfig, b: UseCaseConfig) -> list[str]:
    return _field_changes(a, b)


def _other_changes(old: Config, new: Config) -> list[str]:
    lines: list[str] = []
    added, removed, changed = _diff_named(old.use_cases, new.use_cases, _use_case_changes)
    lines += [f"use case {u} added" for u in added]
    lines += [f"use case {u} removed" for u in removed]
    lines += [f"use case {u}: {c}" for u, cs in changed.items() for c in cs]

    old_b = {_budget_key(b): b for b in old.budgets}
    new_b = {_budget_key(b): b for b in new.budgets}
    added, removed, changed = _diff_named(old_b, new_b, _budget_changes)
    lines += [f"budget {k} added" for k in added]
    lines += [f"budget {k} removed" for k in removed]
    lines += [f"budget {k}: {c}" for k, cs in changed.items() for c in cs]

    lines += [f"settings: {c}" for c in _field_changes(old.settings, new.settings)]
    if _strip_where(old.tests) != _strip_where(new.tests):
        lines.append(f"routing tests changed ({len(old.tests)} -> {len(new.tests)})")
    return lines


def _budget_key(b: Budget) -> str:
    return b.scope if b.name is None else f"{b.scope} {b.name}"


def _budget_changes(a: Budget, b: Budget) -> list[str]:
    return _field_changes(a, b, skip=("scope", "name", "where"))


def _strip_where(items: Sequence[Any]) -> list[Any]:
    return [dataclasses.replace(i, where=None) for i in items]


# -- generic field diff and formatting ---------------------------------------------------


def _field_changes(
    a: Any,
    b: Any,
    *,
    prefix: str = "",
    skip: Sequence[str] = ("name", "where"),
    opaque: Sequence[str] = (),
    keys_only: Sequence[str] = (),
) -> list[str]:
    """Readable changes between two dataclasses of one type, field by field."""
    out: list[str] = []
    for f in dataclasses.fields(a):
        if f.name in skip:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x == y:
            continue
        label = prefix + f.name
        if f.name in opaque:
            what = "added" if x is None else "removed" if y is None else "changed"
            out.append(f"{label} {what}")
        elif f.name in keys_only and isinstance(x, Mapping) and isinstance(y, Mapping):
            out.append(f"{label} changed ({', '.join(_changed_keys(x, y))})")
        elif (
            dataclasses.is_dataclass(x)
            and type(x) is type(y)
            and not isinstance(x, Cost)
            and not isinstance(x, type)
        ):
            out += _field_changes(x, y, prefix=label + ".", skip=())
        else:
            out.append(f"{label} {_fmt(x, top=True)} -> {_fmt(y, top=True)}")
    return out


def _changed_keys(x: Mapping[str, Any], y: Mapping[str, Any]) -> list[str]:
    keys = list(x) + [k for k in y if k not in x]
    return [str(k) for k in keys if k not in x or k not in y or x[k] != y[k]]


def _fmt(value: Any, *, top: bool = False) -> str:
    """Short, stable text for a config value; secrets stay masked."""
    if value is None:
        return "none"
    if isinstance(value, Secret):
        return "****"
    if isinstance(value, Cost):
        return f"{value.input}/{value.output}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (frozenset, set, list, tuple)) and not value:
        return "none" if top else "[]"
    if isinstance(value, (frozenset, set)):
        items = sorted(_fmt(v) for v in value)
        return ", ".join(items) if top else "[" + ", ".join(items) + "]"
    if isinstance(value, (list, tuple)):
        items = [_fmt(v) for v in value]
        return ", ".join(items) if top else "[" + ", ".join(items) + "]"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        inner = ", ".join(
            f"{f.name}={_fmt(getattr(value, f.name))}"
            for f in dataclasses.fields(value)
            if f.name != "where"
        )
        return "{" + inner + "}"
    return str(value)


__all__ = ["ConfigChanges", "ReloadEvent", "diff_configs"]

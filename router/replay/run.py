"""Replay: route yesterday's logged traffic through a new config; no model is called.

    report = replay(new_config, "requests.jsonl")                     # vs what was logged
    report = replay(new_config, "requests.jsonl", against=old_config) # vs another config

For each logged request the new config decides again (the same `decide()` that
serves, with no live state: no open circuits, no spent budgets). "Before" is the
logged decision, or `against`'s decision when given. The report counts requests per
rule and model on both sides, groups the decisions that changed, prices both sides
from the logged token counts (billed tokens where the request was served, else the
estimate), lists requests that would no longer route and why, and runs the new
config's own routing tests.
"""

from __future__ import annotations

import os
from typing import Any

from router.config.model import Config
from router.engine.decide import decide
from router.engine.routing_state import NullState
from router.observe.request_log import rejection_kind
from router.replay.logged import LoggedRequest, LogSource, ReadStats, read_log
from router.replay.report import Group, ReplayReport, Side
from router.types import Decision

NOT_ROUTED = "(not routed)"
DRAWN_STRATEGIES = frozenset({"round_robin", "weighted"})
TEXT_IN_EXAMPLE = 60  # characters of a logged prompt shown in an example


def _load(config: Config | str | os.PathLike[str]) -> Config:
    if isinstance(config, Config):
        return config
    from router.config.loader import load_config

    return load_config(config)


def _label(config: Config | str | os.PathLike[str], loaded: Config) -> str:
    if not isinstance(config, Config):
        return os.fspath(config)
    return loaded.files[0] if loaded.files else "config"


class _Pricer:
    """USD for (model, tokens in, tokens out) under one config."""

    def __init__(self, config: Config) -> None:
        self.costs = {name: m.cost for name, m in config.models.items()}

    def price(self, model: str, tin: int, tout: int, logged: LoggedRequest, side: Side) -> float:
        cost = self.costs.get(model)
        if cost is not None:
            return cost.estimate(tin, tout)
        if logged.served and logged.model == model:
            return logged.cost_usd  # the adapter's own price (litellm's map) from then
        side.unpriced += 1
        return 0.0


def _no_route_reason(d: Decision) -> str:
    if not any(t.matched for t in d.rules):
        return "no rule matches"
    kinds = ", ".join(f"{m}: {rejection_kind(why)}" for m, why in d.rejected.items())
    return f"every candidate rejected ({kinds})" if kinds else "no candidate left"


def _example(logged: LoggedRequest, reason: str | None = None) -> dict[str, Any]:
    req = logged.request
    ex: dict[str, Any] = {
        "line": logged.line,
        "use_case": logged.use_case,
        "tokens": req.tokens,
        "tags": sorted(req.tags),
    }
    if reason:
        ex["reason"] = reason
    if logged.has_text and req.text:
        ex["text"] = req.text[:TEXT_IN_EXAMPLE]
    return ex


def _count(side: Side, rule: str | None, model: str | None) -> None:
    if model is None:
        side.not_routed += 1
        side.by_rule[NOT_ROUTED] += 1
        side.by_model[NOT_ROUTED] += 1
    else:
        side.by_rule[rule or "-"] += 1
        side.by_model[model] += 1


def _add(groups: dict[str, Group], key: str, example: dict[str, Any], keep: int) -> None:
    g = groups.get(key)
    if g is None:
        g = groups[key] = Group(key)
    g.count += 1
    if len(g.examples) < keep:
        g.examples.append(example)


def replay(
    new: Config | str | os.PathLike[str],
    log: LogSource,
    *,
    against: Config | str | os.PathLike[str] | None = None,
    examples: int = 3,
) -> ReplayReport:
    """Route every logged request through `new` (and `against`, when given) and compare."""
    from router.runtime.snapshot import Snapshot

    new_cfg = _load(new)
    old_cfg = _load(against) if against is not None else None
    # Built as a reload builds them: a bad template or regex is a ConfigError at its line.
    new_snap = Snapshot.build(new_cfg, 1)
    new_rules = new_snap.ruleset
    old_rules = Snapshot.build(old_cfg, 1).ruleset if old_cfg is not None else None
    new_state, old_state = NullState(), NullState()
    # Rules whose order is a draw: a different model from the same candidates is no move.
    drawn = {r.name for r in new_cfg.rules if r.strategy in DRAWN_STRATEGIES}
    new_price = _Pricer(new_cfg)
    old_price = _Pricer(old_cfg) if old_cfg is not None else None

    report = ReplayReport(_label(new, new_cfg))
    report.before.label = _label(against, old_cfg) if against and old_cfg else "as logged"
    report.after.label = report.new_label
    stats = ReadStats()
    for logged in read_log(log, stats):
        report.requests += 1
        if not logged.has_text:
            report.without_text += 1
        req = logged.request
        after, _ = decide(new_rules, req, new_state)
        if old_rules is not None:
            before, _ = decide(old_rules, req, old_state)
            b_rule, b_model = before.rule, before.model
        else:
            b_rule, b_model = logged.rule, (logged.model if logged.outcome != "no_route" else None)
        _count(report.before, b_rule, b_model)
        _count(report.after, after.rule, after.model)
        tin, tout = logged.input_tokens, logged.output_tokens
        b_cost = a_cost = 0.0
        if b_model is not None:
            if old_price is not None:
                b_cost = old_price.price(b_model, tin, tout, logged, report.before)
            else:
                b_cost = logged.cost_usd
            report.before.cost_usd += b_cost
        if after.model is not None:
            a_cost = new_price.price(after.model, tin, tout, logged, report.after)
            report.after.cost_usd += a_cost
        if b_model is not None and after.model is not None:
            report.before.routed_both_usd += b_cost
            report.after.routed_both_usd += a_cost
        if (b_rule, b_model) == (after.rule, after.model):
            continue
        if b_rule == after.rule and b_rule in drawn and b_model in after.candidates:
            continue  # a round-robin or weighted rule could have drawn this model again
        if after.model is None:
            if b_model is not None:
                reason = _no_route_reason(after)
                _add(report.no_longer_routed, reason, _example(logged), examples)
            continue
        if b_model is None:
            report.newly_routed += 1
            continue
        report.changed_count += 1
        key = f"{b_rule}/{b_model} -> {after.rule}/{after.model}"
        _add(report.changed, key, _example(logged), examples)
    report.unreadable = stats.unreadable
    report.first_unreadable = stats.first_error
    for o in new_snap.run_tests():
        where = f"{o.test.where.file}:{o.test.where.line}" if o.test.where.line else ""
        report.tests.append(
            {
                "prompt": o.test.prompt,
                "ok": o.ok,
                "skipped": o.skipped,
                "message": o.message,
                "where": where,
            }
        )
    return report


__all__ = ["NOT_ROUTED", "replay"]

"""What a replay found, as data (`to_dict()` for CI) and as text (`describe()`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

Route = tuple[str | None, str | None]  # (rule, model); (None, None): not routed


@dataclass(slots=True)
class Side:
    """Traffic under one config: where requests went and what they would cost."""

    label: str
    by_rule: Counter[str] = field(default_factory=Counter)
    by_model: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    routed_both_usd: float = 0.0  # over the requests both sides route: like for like
    unpriced: int = 0  # requests on a model with no price in the config
    not_routed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "by_rule": dict(self.by_rule.most_common()),
            "by_model": dict(self.by_model.most_common()),
            "cost_usd": round(self.cost_usd, 6),
            "cost_usd_routed_both": round(self.routed_both_usd, 6),
            "unpriced": self.unpriced,
            "not_routed": self.not_routed,
        }


@dataclass(slots=True)
class Group:
    """Requests that share one change (or one reason not to route), with a few examples."""

    key: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"change": self.key, "count": self.count, "examples": self.examples}


@dataclass(slots=True)
class ReplayReport:
    new_label: str
    requests: int = 0
    unreadable: int = 0
    first_unreadable: str | None = None
    without_text: int = 0  # replayed on features only: text conditions saw no words
    before: Side = field(default_factory=lambda: Side("before"))
    after: Side = field(default_factory=lambda: Side("after"))
    changed: dict[str, Group] = field(default_factory=dict)
    changed_count: int = 0
    no_longer_routed: dict[str, Group] = field(default_factory=dict)
    newly_routed: int = 0
    tests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def moved_fraction(self) -> float:
        """Share of replayed requests whose rule or model changed."""
        return self.changed_count / self.requests if self.requests else 0.0

    @property
    def cost_change(self) -> float | None:
        """(after - before) / before over the requests both sides route (a request that
        no longer routes must not pass for a saving); None when nothing was spent."""
        before, after = self.before.routed_both_usd, self.after.routed_both_usd
        if before <= 0:
            return None if after <= 0 else float("inf")
        return (after - before) / before

    @property
    def tests_failed(self) -> int:
        return sum(1 for t in self.tests if not t["ok"])

    def violations(
        self, max_moved_pct: float | None = None, max_cost_increase_pct: float | None = None
    ) -> list[str]:
        """Why a CI job should refuse this config change; empty when it may go."""
        out = []
        if max_moved_pct is not None and self.moved_fraction * 100 > max_moved_pct:
            out.append(
                f"{self.moved_fraction:.1%} of requests change route (limit {max_moved_pct:g}%)"
            )
        change = self.cost_change
        too_costly = change is not None and max_cost_increase_pct is not None
        if too_costly and change is not None and change * 100 > (max_cost_increase_pct or 0):
            out.append(f"estimated cost rises {_pct(change)} (limit {max_cost_increase_pct:g}%)")
        lost = sum(g.count for g in self.no_longer_routed.values())
        if lost:
            out.append(f"{lost} request(s) would no longer route")
        if self.tests_failed:
            out.append(f"{self.tests_failed} routing test(s) of the new config fail")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.new_label,
            "requests": self.requests,
            "unreadable_lines": self.unreadable,
            "first_unreadable": self.first_unreadable,
            "without_text": self.without_text,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "changed": self.changed_count,
            "moved_fraction": round(self.moved_fraction, 6),
            "cost_change": None if self.cost_change is None else round(self.cost_change, 6),
            "changes": [g.to_dict() for g in _by_count(self.changed)],
            "no_longer_routed": [g.to_dict() for g in _by_count(self.no_longer_routed)],
            "newly_routed": self.newly_routed,
            "tests": self.tests,
            "tests_failed": self.tests_failed,
        }

    def describe(self) -> str:
        b, a = self.before, self.after
        lines = [
            f"replayed {self.requests} logged request(s) through {self.new_label}"
            f" (before: {b.label})"
        ]
        if self.unreadable:
            lines.append(f"  {self.unreadable} line(s) skipped, first: {self.first_unreadable}")
        if self.without_text:
            lines.append(
                f"  {self.without_text} request(s) logged without text: replayed on their"
                " features, with the use case they had (matches/contains saw no words)"
            )
        lines.append("")
        lines += _table("rule", b.by_rule, a.by_rule)
        lines.append("")
        lines += _table("model", b.by_model, a.by_model)
        lines.append("")
        lines.append(
            f"changed: {self.changed_count} of {self.requests} ({self.moved_fraction:.1%})"
        )
        for g in _by_count(self.changed):
            lines.append(f"  {g.count:>6}  {g.key}")
            for ex in g.examples:
                lines.append(f"          e.g. {_example(ex)}")
        lines.append("")
        change = self.cost_change
        lines.append(
            f"estimated cost: ${b.cost_usd:.6f} -> ${a.cost_usd:.6f}; over the"
            f" {self.requests - b.not_routed - _lost(self)} requests routed by both:"
            f" ${b.routed_both_usd:.6f} -> ${a.routed_both_usd:.6f}"
            + ("" if change is None else f" ({_pct(change)})")
        )
        if a.unpriced:
            lines.append(f"  {a.unpriced} request(s) on models with no price in the new config")
        lost = _by_count(self.no_longer_routed)
        lines.append("")
        lines.append(f"no longer routed: {sum(g.count for g in lost)}")
        for g in lost:
            lines.append(f"  {g.count:>6}  {g.key}")
            for ex in g.examples:
                lines.append(f"          e.g. {_example(ex)}")
        if self.newly_routed:
            lines.append(f"newly routed (did not route before): {self.newly_routed}")
        lines.append("")
        ok = sum(1 for t in self.tests if t["ok"] and not t["skipped"])
        skipped = sum(1 for t in self.tests if t["skipped"])
        lines.append(
            f"routing tests of the new config: {ok} ok, {self.tests_failed} failing,"
            f" {skipped} skipped"
        )
        for t in self.tests:
            if not t["ok"]:
                lines.append(f"  FAIL {t['where']} {t['prompt']!r}: {t['message']}")
        return "\n".join(lines)


def _lost(report: ReplayReport) -> int:
    return sum(g.count for g in report.no_longer_routed.values())


def _pct(x: float) -> str:
    return "+inf%" if x == float("inf") else f"{x:+.1%}"


def _by_count(groups: dict[str, Group]) -> list[Group]:
    return sorted(groups.values(), key=lambda g: (-g.count, g.key))


def _example(ex: dict[str, Any]) -> str:
    parts = [f"line {ex['line']}"]
    for k in ("use_case", "tokens", "tags", "reason", "text"):
        v = ex.get(k)
        if v:
            parts.append(f"{k}={v!r}" if k == "text" else f"{k}={v}")
    return ", ".join(parts)


def _table(what: str, before: Counter[str], after: Counter[str]) -> list[str]:
    names = sorted(set(before) | set(after), key=lambda n: (-max(before[n], after[n]), n))
    width = max([len(what), *(len(n) for n in names)])
    lines = [f"{what:<{width}}  {'before':>8}  {'after':>8}  {'change':>8}"]
    for n in names:
        d = after[n] - before[n]
        lines.append(f"{n:<{width}}  {before[n]:>8}  {after[n]:>8}  {d:>+8}")
    return lines


__all__ = ["Group", "ReplayReport", "Route", "Side"]

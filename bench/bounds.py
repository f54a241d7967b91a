"""What the bounds on hostile input cost per request, each beside its unbounded twin.

Three workloads, each measured both ways in the same run, in alternating rounds (so a
busy machine slows both alike), median of the rounds' p50 / p99:

1. decision: bench/decision.py's configs (10 / 100 / 1,000 rules), `explain()`, with
   the argument checks of `route()` on (now) and off (before);
2. matching: the same configs with a `matches:` regex on every rule and a use-case
   detector, patterns on RE2 (now) and on Python's `re` (before);
3. rendering: a rule's `system` and `prompt` templates (loop, filters, `%`, `~`) on
   the bounded sandbox (now) and on jinja2's plain immutable sandbox (before):
   `Template.render` alone, and a whole `route()` served by the mock provider. Both
   sides render through the router's render function (a flat copy of the globals,
   lookups bound once); one more row compares with jinja2's own `Template.render`,
   the path before the bounds.

Target: each "now" p50 within 10 % of its "before" in the same run. Templates with
nothing that can grow (no loop, call, operator, literal container or growing filter,
like `Task: {{ prompt | trim }}`) render on the plain sandbox: the last row.

    .venv/bin/python bench/bounds.py [--iterations 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from decision import make_config

from router import Router
from router.config.model import Config, Settings, UseCaseConfig
from router.config.patterns import compile_pattern
from router.engine import conditions, requests, ruleset
from router.engine.templates import Template, _environment

PROMPT = "Refactor this function so that it handles empty input and add a test."
PATTERN = r"(?i)\b(refactor|function|handles?|tests?)\b"


def compare(
    now: Callable[[], Any], before: Callable[[], Any], iterations: int, rounds: int
) -> tuple[float, float, float, float]:
    """(now p50, now p99, before p50, before p99) in µs, the two timed call by call in
    turn, so a busy machine slows both alike; p50 and p99 are medians over rounds."""
    for fn in (now, before):
        for _ in range(min(2000, iterations)):
            fn()
    clock = time.perf_counter_ns
    got: list[tuple[float, float, float, float]] = []
    for _ in range(rounds):
        a: list[float] = []
        b: list[float] = []
        gc.disable()
        try:
            for i in range(iterations):
                first, second, into_first, into_second = (
                    (now, before, a, b) if i % 2 == 0 else (before, now, b, a)
                )  # each goes first half the time: neither gets the other's warm caches
                t0 = clock()
                first()
                t1 = clock()
                second()
                t2 = clock()
                into_first.append((t1 - t0) / 1000)
                into_second.append((t2 - t1) / 1000)
        finally:
            gc.enable()
        qa = statistics.quantiles(a, n=100, method="inclusive")
        qb = statistics.quantiles(b, n=100, method="inclusive")
        got.append((qa[49], qa[98], qb[49], qb[98]))
    return tuple(statistics.median(col) for col in zip(*got, strict=True))  # type: ignore[return-value]


@contextmanager
def argument_checks_off() -> Iterator[None]:
    saved = requests._check_arguments
    requests._check_arguments = lambda *a: None  # type: ignore[assignment]
    try:
        yield
    finally:
        requests._check_arguments = saved


def with_patterns(n: int) -> Config:
    config = make_config(n)
    rules = tuple(
        dataclasses.replace(r, when={**r.when, "matches": PATTERN}) if r.when else r
        for r in config.rules
    )
    detectors = {
        "summary": UseCaseConfig("summary", matches=r"(?i)\b(summari[sz]e|tl;?dr)\b"),
        "coding": UseCaseConfig("coding", matches=PATTERN),
    }
    return dataclasses.replace(config, rules=rules, use_cases=detectors)


@contextmanager
def python_re() -> Iterator[None]:
    """Build with unbounded Python `re` patterns: the engine before RE2."""
    saved_c, saved_r = conditions.compile_pattern, ruleset.compile_pattern

    def on_re(source: str, engine: str | None = None) -> Any:
        return compile_pattern(source, "re")

    conditions.compile_pattern = on_re  # type: ignore[assignment]
    ruleset.compile_pattern = on_re  # type: ignore[assignment]
    try:
        yield
    finally:
        conditions.compile_pattern, ruleset.compile_pattern = saved_c, saved_r


SYSTEM = (
    "You are a careful {{ language | default('Python') }} engineer. "
    "{% for t in tags %}[{{ t | upper }}]{% endfor %} {{ '%s/%d' % (use_case, tags|length) }}"
)
PROMPT_TEMPLATE = "Task: {{ prompt | replace('function', 'routine') }} ~ {{ prompt ~ '!' }}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    it, rounds = args.iterations, args.rounds
    worst = 0.0

    def row(label: str, figures: tuple[float, float, float, float]) -> None:
        nonlocal worst
        n50, n99, b50, b99 = figures
        change = (n50 / b50 - 1) * 100
        worst = max(worst, change)
        print(
            f"{label:<28} | {n50:>8.1f} {n99:>8.1f} | {b50:>8.1f} {b99:>8.1f} | {change:>+6.1f} %"
        )

    print(f"µs per call, median of {rounds} alternating rounds of {it} calls")
    print(f"{'workload':<30} | {'now p50':>7} {'p99':>7} | {'before':>7} {'p99':>7} | p50 change")

    for n in (10, 100, 1000):
        router = Router(make_config(n))
        target = f"uc{n - 3}"

        def explain(router: Router = router, target: str = target) -> Any:
            return router.explain(PROMPT, use_case=target)

        def explain_unchecked(router: Router = router, target: str = target) -> Any:
            with argument_checks_off():
                return router.explain(PROMPT, use_case=target)

        def explain_checked(router: Router = router, target: str = target) -> Any:
            with _same_overhead():  # the same context-manager cost as the baseline's
                return router.explain(PROMPT, use_case=target)

        row(f"decision, {n} rules", compare(explain_checked, explain_unchecked, it, rounds))
        router.close()

    for n in (10, 100, 1000):
        target = f"uc{n - 3}"
        now = Router(with_patterns(n))
        with python_re():
            before = Router(with_patterns(n))
        assert now.explain(PROMPT, use_case=target).served
        row(
            f"matching (RE2 vs re), {n}",
            compare(
                lambda r=now, t=target: r.explain(PROMPT, use_case=t),
                lambda r=before, t=target: r.explain(PROMPT, use_case=t),
                it,
                rounds,
            ),
        )
        detect = compare(
            lambda r=now: r.explain(PROMPT), lambda r=before: r.explain(PROMPT), it, rounds
        )
        row(f"detect use case + match, {n}", detect)
        now.close()
        before.close()

    variables = {"language": "Rust", "tags": ["prod", "eu"], "use_case": "coding", "prompt": PROMPT}
    bounded = (Template(SYSTEM, "s"), Template(PROMPT_TEMPLATE, "p"))
    plain = (Template(SYSTEM, "s", bounded=False), Template(PROMPT_TEMPLATE, "p", bounded=False))
    assert [t.render(variables) for t in bounded] == [t.render(variables) for t in plain]
    row(
        "render only (bounded vs plain)",
        compare(
            lambda: [t.render(variables) for t in bounded],
            lambda: [t.render(variables) for t in plain],
            it,
            rounds,
        ),
    )
    # Today's path before this bound: jinja2's own `Template.render` on the plain
    # immutable sandbox (our render functions skip per-render work on both sides above).
    jinja_plain = [_environment(False).from_string(src) for src in (SYSTEM, PROMPT_TEMPLATE)]
    row(
        "render only (vs jinja2 render)",
        compare(
            lambda: [t.render(variables) for t in bounded],
            lambda: [t.render(variables) for t in jinja_plain],
            it,
            rounds,
        ),
    )
    now_router, before_router = templated_router(True), templated_router(False)
    tags = ["prod", "eu"]
    row(
        "route(), templated rule",
        compare(
            lambda: now_router.route(PROMPT, use_case="coding", tags=tags, language="Rust"),
            lambda: before_router.route(PROMPT, use_case="coding", tags=tags, language="Rust"),
            it,
            rounds,
        ),
    )
    plain_now, plain_before = templated_router(True, PLAIN), templated_router(False, PLAIN)
    row(
        "route(), plain template",
        compare(
            lambda: plain_now.route(PROMPT, use_case="coding", tags=tags),
            lambda: plain_before.route(PROMPT, use_case="coding", tags=tags),
            it,
            rounds,
        ),
    )
    print(
        f"largest p50 change: {worst:+.1f} % "
        f"(target: within +10 %: {'met' if worst <= 10 else 'MISSED'})"
    )


PLAIN = ("You are a careful engineer.", "Task: {{ prompt | trim }}")


def templated_router(bounded: bool, templates: tuple[str, str] | None = None) -> Router:
    """A mock-served rule with these templates (default: SYSTEM and PROMPT_TEMPLATE):
    bounded, or on jinja2's plain sandbox."""
    system, prompt = templates or (SYSTEM, PROMPT_TEMPLATE)
    config = make_config(100)
    rule = dataclasses.replace(config.rules[-1], system=system, prompt=prompt, targets=("m1",))
    config = dataclasses.replace(
        config,
        rules=(*config.rules[:-1], rule),
        settings=Settings(usage_db=":memory:"),
    )
    router = Router(config)
    if not bounded:
        compiled = router.snapshot.ruleset.by_name["default"]
        object.__setattr__(compiled, "system", Template(system, "s", bounded=False))
        object.__setattr__(compiled, "prompt", Template(prompt, "p", bounded=False))
    return router


@contextmanager
def _same_overhead() -> Iterator[None]:
    saved = requests._check_arguments
    requests._check_arguments = saved
    try:
        yield
    finally:
        requests._check_arguments = saved


if __name__ == "__main__":
    main()

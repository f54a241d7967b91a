"""Decision speed: p50/p99 of `explain()` (match + filter + order, no call).

Generated configs of 10, 100 and 1,000 rules over 100 models. Most rules are
keyed by use case (as real configs are), each with extra conditions; two
unrestricted rules (a long-document rule first, a catch-all last) are always
scanned. The request targets the LAST use-case rule, the worst case for a scan.
Baseline in the same run: the same decision with the use-case index switched off
(every rule scanned in file order).

    .venv/bin/python bench/decision.py [--iterations 20000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

from router import Router
from router.config.model import Config, Cost, ModelConfig, ProviderConfig, RuleConfig

N_MODELS = 100


def make_config(n_rules: int) -> Config:
    providers = {
        "cloud": ProviderConfig("cloud", "mock"),
        "off": ProviderConfig("off", "mock", disabled_reason="OFF_API_KEY is not set"),
    }
    models = {
        f"m{i}": ModelConfig(
            name=f"m{i}",
            provider="off" if i % 10 == 0 else "cloud",
            model=f"vendor/m{i}",
            context=4096 * (1 + i % 8),
            cost=Cost(0.1 * (i % 7), 0.3 * (i % 5)),
            capabilities=frozenset({"tools"} if i % 3 == 0 else ()),
        )
        for i in range(N_MODELS)
    }
    strategies = ["ordered", "cheapest", "fastest", "round_robin", "weighted", "least_busy"]
    rules = [RuleConfig("long-docs", ("m7", "m15"), when={"tokens": {"gt": 60000}})]
    for i in range(n_rules - 2):
        when = {"use_case": f"uc{i}"}
        if i % 3 == 1:
            when["tags"] = ["prod"]  # type: ignore[assignment]
        targets = tuple(f"m{(i * 7 + k * 13) % N_MODELS}" for k in range(3))
        rules.append(
            RuleConfig(
                f"r{i}",
                targets,
                when=when,
                strategy=strategies[i % len(strategies)],
                max_cost=0.5,
            )
        )
    rules.append(RuleConfig("default", ("m1", "m2")))
    return Config(providers=providers, models=models, rules=tuple(rules))


def timings(router: Router, use_case: str, iterations: int) -> list[float]:
    prompt = "Refactor this function so that it handles empty input and add a test."
    explain = router.explain
    for _ in range(2000):
        explain(prompt, use_case=use_case)
    out = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for _ in range(iterations):
            t0 = clock()
            d = explain(prompt, use_case=use_case)
            out.append((clock() - t0) / 1000)
    finally:
        gc.enable()
    assert d.served, d.describe()
    return out


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=20000)
    args = ap.parse_args()
    print(f"explain() latency, µs ({args.iterations} calls each, 100 models)")
    print(f"{'rules':>6} | {'indexed p50':>11} {'p99':>7} | {'linear p50':>10} {'p99':>7}")
    rows = []
    for n in (10, 100, 1000):
        router = Router(make_config(n))
        target = f"uc{n - 3}"
        fast = timings(router, target, args.iterations)
        rs = router.snapshot.ruleset
        rs.index = {}  # type: ignore[misc]  # baseline: no index, every rule scanned
        rs.generic = rs.rules  # type: ignore[misc]
        slow = timings(router, target, max(2000, args.iterations // 10))
        rows.append((n, pct(fast, 50), pct(fast, 99)))
        print(
            f"{n:>6} | {pct(fast, 50):>11.1f} {pct(fast, 99):>7.1f} | "
            f"{pct(slow, 50):>10.1f} {pct(slow, 99):>7.1f}"
        )
    growth = rows[-1][1] / rows[0][1]
    p50, p99 = rows[-1][1], rows[-1][2]
    print(f"growth of indexed p50 from 10 to 1,000 rules: x{growth:.2f}")
    print(
        f"target at 1,000 rules: p50 <= 20 µs ({'met' if p50 <= 20 else 'MISSED'}: {p50:.1f}), "
        f"p99 <= 100 µs ({'met' if p99 <= 100 else 'MISSED'}: {p99:.1f})"
    )


if __name__ == "__main__":
    main()

"""Hot reload speed: from a file write to the new config serving, and load cost by size.

1. Reload latency. A Router watches a real file (watchdog, default debounce unless
   --debounce-ms says otherwise). Each edit changes which model a rule targets; the
   clock starts just before the write and stops when a request routed from another
   thread sees the new decision (polling `explain()`, as a client would). Edits are
   spaced out so each is its own burst. Reported per edit style (write in place, temp
   file renamed over) as p50 / p90 / p99 / max. The debounce is a floor of the figure.

2. Load + validate + compile for configs of 10, 100 and 1,000 rules: `load_config`
   (YAML with line numbers, interpolation, JSON Schema, semantic checks, dataclasses),
   `Snapshot.build` (compiled conditions, templates, rule index) and the config's own
   routing tests. Baseline in the same run: a bare `yaml.safe_load` of the same file
   (C loader when present), the least any YAML config reload must pay.

    .venv/bin/python bench/reload.py [--edits 60] [--debounce-ms N] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from router import Router
from router.config.loader import load_config
from router.engine.templates import _compile
from router.runtime.snapshot import Snapshot

N_MODELS = 100


def small_config(target: str) -> str:
    return f"""\
providers:
  echo: {{type: mock}}
models:
  fast: {{provider: echo, model: fast}}
  smart: {{provider: echo, model: smart}}
  big: {{provider: echo, model: big}}
rules:
  - name: coding
    when: {{use_case: coding}}
    targets: [{target}]
  - name: default
    targets: [fast]
tests:
  - {{prompt: "fn main", use_case: coding, expect: {{rule: coding}}}}
"""


def sized_config(n_rules: int, distinct_templates: bool = False) -> str:
    """n_rules rules over 100 models; each rule with a few conditions and a template.

    Templates are shared by use case (20 distinct ones), as real configs reuse a few
    system prompts; `distinct_templates` gives every rule its own.
    """
    out = ["providers:", "  echo: {type: mock}", "  backup: {type: mock, reply: backup}", "models:"]
    for i in range(N_MODELS):
        out.append(
            f"  m{i}: {{provider: {'echo' if i % 2 else 'backup'}, model: vendor/m{i}, "
            f"context: {8192 * (1 + i % 8)}, cost: {{input: {0.1 * (i % 7):.2f}, "
            f"output: {0.3 * (i % 5):.2f}}}, capabilities: [tools]}}"
        )
    out.append("use_cases:")
    for j in range(20):
        out.append(f"  uc{j}: {{matches: '(?i)\\b(word{j}|term{j})\\b', contains: [k{j}]}}")
    out.append("rules:")
    for r in range(n_rules - 1):
        a, b = r % N_MODELS, (r * 7 + 3) % N_MODELS
        lang = r if distinct_templates else r % 20
        out += [
            f"  - name: rule-{r}",
            f"    when: {{use_case: [uc{r % 20}, x{r}], tokens: {{lte: {50000 + r}}}}}",
            f"    targets: [m{a}, m{b}]",
            "    strategy: " + ("ordered", "cheapest", "fastest")[r % 3],
            "    params: {temperature: 0.2}",
            f"    system: \"You write {{{{ language | default('L{lang}') }}}}.\"",
        ]
    out += ["  - name: default", "    targets: [m0, m1]", "tests:"]
    for t in range(min(10, n_rules - 1)):
        out.append(f"  - {{prompt: 'about word{t}', use_case: uc{t}, expect: {{rule: rule-{t}}}}}")
    return "\n".join(out) + "\n"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def ms(v: float) -> str:
    return f"{v * 1000:8.1f}"


# -- 1. write -> serving -------------------------------------------------------------------


def write_in_place(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def write_rename_over(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def reload_latency(
    root: Path, edits: int, debounce_ms: int | None, write: Callable[[Path, str], None]
) -> tuple[list[float], int]:
    path = root / f"router-{write.__name__}.yaml"
    path.write_text(small_config("fast"))
    router = Router.from_config(path, watch=True, debounce_ms=debounce_ms)
    latencies: list[float] = []
    failures = 0
    try:
        targets = ["smart", "big"]
        for i in range(edits):
            want = targets[i % 2]
            start = time.perf_counter()
            write(path, small_config(want))
            deadline = start + 10.0
            while router.explain("fn main", use_case="coding").model != want:
                if time.perf_counter() > deadline:
                    failures += 1
                    break
                time.sleep(0.0005)
            else:
                latencies.append(time.perf_counter() - start)
            time.sleep(0.05)  # let the burst end before the next edit
        if router.status().last_error:
            print("  last error:", router.status().last_error, file=sys.stderr)
    finally:
        router.close()
    return latencies, failures


# -- 2. load + validate + compile ----------------------------------------------------------


def time_it(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm: imports, compiled schema, caches of the first call
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def load_cost(root: Path, n_rules: int, repeat: int) -> dict[str, list[float]]:
    path = root / f"rules-{n_rules}.yaml"
    path.write_text(sized_config(n_rules))
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    def bare_yaml() -> object:
        with open(path) as f:
            return yaml.load(f, Loader=loader)

    def full_reload() -> Snapshot:
        config = load_config(path)
        snap = Snapshot.build(config, 2)
        snap.check_tests()
        return snap

    def cold_reload() -> Snapshot:
        _compile.cache_clear()  # as on the first load: no template compiled yet
        return full_reload()

    config = load_config(path)
    assert len(config.rules) == n_rules, len(config.rules)
    snap = Snapshot.build(config, 2)
    return {
        "yaml.safe_load (baseline)": time_it(bare_yaml, repeat),
        "load_config": time_it(lambda: load_config(path), repeat),
        "Snapshot.build": time_it(lambda: Snapshot.build(config, 2), repeat),
        "routing tests": time_it(snap.check_tests, repeat),
        "load+validate+compile": time_it(full_reload, repeat),
        "  same, first load (cold)": time_it(cold_reload, repeat),
    }


def worst_case(root: Path, repeat: int) -> list[float]:
    """1,000 rules, each with its own template, nothing compiled before."""
    path = root / "rules-1000-distinct.yaml"
    path.write_text(sized_config(1000, distinct_templates=True))

    def cold_reload() -> None:
        _compile.cache_clear()
        Snapshot.build(load_config(path), 2).check_tests()

    return time_it(cold_reload, max(3, repeat // 3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edits", type=int, default=60, help="edits per style (>= 50)")
    ap.add_argument("--debounce-ms", type=int, default=None, help="default: the config's (100)")
    ap.add_argument("--repeat", type=int, default=15, help="timed loads per size")
    args = ap.parse_args()

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        debounce = args.debounce_ms if args.debounce_ms is not None else 100
        print(f"\n1. file write -> new config serving ({args.edits} edits each,", end=" ")
        print(f"debounce {debounce} ms)")
        print(f"  {'edit style':<16}{'p50 ms':>8}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}  missed")
        for write in (write_in_place, write_rename_over):
            lat, missed = reload_latency(root, args.edits, args.debounce_ms, write)
            name = write.__name__.removeprefix("write_")
            print(
                f"  {name:<16}{ms(pct(lat, 50))} {ms(pct(lat, 90))} {ms(pct(lat, 99))} "
                f"{ms(max(lat))}  {missed}"
            )

        print(f"\n2. load + validate + compile (median / min of {args.repeat}, ms)")
        header = f"  {'step':<28}" + "".join(f"{f'{n} rules':>20}" for n in (10, 100, 1000))
        print(header)
        results = {n: load_cost(root, n, args.repeat) for n in (10, 100, 1000)}
        for step in results[10]:
            cells = "".join(
                f"{statistics.median(results[n][step]) * 1000:>11.1f} / "
                f"{min(results[n][step]) * 1000:<6.1f}"
                for n in (10, 100, 1000)
            )
            print(f"  {step:<28}{cells}")
        worst = worst_case(root, args.repeat)
        print(
            "  1,000 rules, every template distinct, cold: "
            f"median {statistics.median(worst) * 1000:.1f} / min {min(worst) * 1000:.1f} ms"
        )
        size = len(sized_config(1000).encode())
        print(f"  (the 1,000-rule file is {size / 1024:.0f} KiB, {N_MODELS} models, 20 use cases)")


if __name__ == "__main__":
    main()

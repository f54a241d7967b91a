"""What each litellm setting of the adapter buys: `python bench/overhead.py --settings`.

Per-call settings are toggled in one process on one provider, in alternating blocks
(on, off, off, on, ...), and compared by the median block: wall ms per call and
process CPU ms per call (all threads: litellm's logging thread included; the fake
server runs in its own process). Import-time settings are measured in fresh
interpreters, best of three.
"""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from overhead import KEY, MODEL, PROMPT


@dataclass
class Toggle:
    name: str
    apply: Callable[[bool], None]
    applied: bool = True  # False: measured, then left off because it does not pay


def run_ablation(start_server: Callable[[], tuple[Any, str]], n: int, rounds: int) -> None:
    import litellm

    from router.config.model import Cost, ModelConfig, ProviderConfig
    from router.providers import litellm_provider as adapter
    from router.providers.base import Call
    from router.secrets import Secret

    proc, url = start_server()
    try:
        provider = adapter.LiteLLMProvider(
            ProviderConfig(name="fake", type="litellm", api_key=Secret(KEY), api_base=url + "/v1")
        )
        model = ModelConfig(name="m", provider="fake", model=MODEL, cost=Cost(0.15, 0.6))
        call = Call(model=model, messages=({"role": "user", "content": PROMPT},))
        build = provider._kwargs

        def without(*keys: str) -> Callable[[bool], None]:
            def apply(on: bool) -> None:
                if on:
                    vars(provider).pop("_kwargs", None)
                    return

                def trimmed(*a: Any, **kw: Any) -> dict[str, Any]:
                    out = build(*a, **kw)
                    for key in keys:
                        out.pop(key, None)
                    return out

                provider._kwargs = trimmed  # type: ignore[method-assign]

            return apply

        def adding(**extra: Any) -> Callable[[bool], None]:
            """On: the adapter as it is; off: these kwargs added to every call."""

            def apply(on: bool) -> None:
                if on:
                    vars(provider).pop("_kwargs", None)
                    return

                def more(*a: Any, **kw: Any) -> dict[str, Any]:
                    return {**build(*a, **kw), **extra}

                provider._kwargs = more  # type: ignore[method-assign]

            return apply

        def reuse_client(on: bool) -> None:
            if on:
                vars(provider).pop("_openai_client", None)
            else:
                provider._openai_client = lambda call: None  # type: ignore[method-assign]

        def quiet(on: bool) -> None:
            for name in adapter._LITELLM_LOGGERS:
                logger = logging.getLogger(name)
                logger.disabled = on
                logger.propagate = not on
                logger.setLevel(logging.CRITICAL + 1 if on else logging.NOTSET)

        def flag(name: str) -> Callable[[bool], None]:
            def apply(on: bool) -> None:
                setattr(litellm, name, on)

            return apply

        toggles = [
            Toggle("reused OpenAI SDK client (client=)", reuse_client),
            Toggle("litellm loggers disabled", quiet),
            Toggle("drop_params only when there are params", adding(drop_params=True)),
            Toggle("num_retries=0, max_retries=0", without("num_retries", "max_retries")),
            Toggle("turn_off_message_logging=True", flag("turn_off_message_logging"), False),
            Toggle("disable_token_counter=True", flag("disable_token_counter"), False),
        ]
        for _ in range(100):
            provider.complete(call)
        block = max(10, n // (2 * rounds))
        print(f"per-call settings: {rounds} rounds x {block} calls each way, adapter.complete()")
        print(f"{'setting':38} {'wall off':>9} {'wall on':>9} {'saved':>8} {'cpu saved':>10}")
        for toggle in toggles:
            wall: dict[bool, list[float]] = {True: [], False: []}
            cpu: dict[bool, list[float]] = {True: [], False: []}
            for r in range(rounds):
                for on in (True, False) if r % 2 else (False, True):
                    toggle.apply(on)
                    t0, c0 = time.perf_counter(), time.process_time()
                    for _ in range(block):
                        provider.complete(call)
                    wall[on].append((time.perf_counter() - t0) / block * 1e3)
                    cpu[on].append((time.process_time() - c0) / block * 1e3)
            toggle.apply(toggle.applied)
            w_on, w_off = statistics.median(wall[True]), statistics.median(wall[False])
            saved_cpu = statistics.median(cpu[False]) - statistics.median(cpu[True])
            note = "" if toggle.applied else "  (not applied)"
            print(
                f"{toggle.name:38} {w_off:9.3f} {w_on:9.3f} {w_off - w_on:+8.3f} "
                f"{saved_cpu:+10.3f}{note}"
            )
        provider.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print()
    import_costs()


def import_costs() -> None:
    code = "import time; t = time.perf_counter(); import litellm; print(time.perf_counter() - t)"
    base = {k: v for k, v in os.environ.items() if not k.startswith("LITELLM_")}
    cases = [
        ("adapter: local price map, no .env", {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}),
        ("price map fetched from GitHub", {"LITELLM_LOCAL_MODEL_COST_MAP": ""}),
        ("LITELLM_MODE=DEV (loads .env)", {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}),
    ]
    print("import litellm in a fresh interpreter (best of 3):")
    for label, extra in cases:
        mode = "DEV" if "DEV" in label else "PRODUCTION"
        env = {**base, "LITELLM_MODE": mode, **extra}
        best, warnings = float("inf"), 0
        for _ in range(3):
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True
            )
            best = min(best, float(out.stdout.strip() or "nan"))
            warnings = max(warnings, out.stderr.count("WARNING"))
        print(f"  {label:40} {best:6.2f} s  {warnings} warning lines on stderr")

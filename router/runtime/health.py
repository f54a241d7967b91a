"""`Router.health()`: a real probe of every provider, in parallel, with latency and words.

A provider is `ok` when its probe answered, `down` when it failed (the error in the
provider's own words) or did not answer in time, and `disabled` when the config or
an earlier failure switched it off (with why). A disabled provider is not probed:
there is nothing it could serve.

The probe is the adapter's own (`Provider.probe`): a listing where the backend
offers one (no tokens spent), else a 1-token request to one of its models.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from router.errors import RouterError
from router.runtime.snapshot import Snapshot

Clock = Callable[[], float]

OK = "ok"
DOWN = "down"
DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    name: str
    type: str
    status: str  # ok | down | disabled
    probe: str = ""  # what was done: "listed 12 models", "1-token request to x"
    latency_ms: float | None = None
    error: str | None = None  # the failure in words (endpoint, status, the server's words)
    disabled_reason: str | None = None
    notes: tuple[str, ...] = ()  # e.g. "n_gpu_layers=-1 asks for GPU offload, but ..."

    @property
    def ok(self) -> bool:
        return self.status == OK

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["notes"] = list(self.notes)
        return out


def check(
    snap: Snapshot,
    runtime_disabled: dict[str, str],
    timeout: float = 10.0,
    clock: Clock = time.perf_counter,
) -> list[ProviderHealth]:
    """Probe every provider of `snap` at once; each gets `timeout` seconds."""
    names = list(snap.config.providers)
    results: dict[str, ProviderHealth] = {}
    threads = []
    for name in names:
        p = snap.config.providers[name]
        why = p.disabled_reason or runtime_disabled.get(name)
        if why is not None:
            results[name] = ProviderHealth(name, p.type, DISABLED, disabled_reason=why)
            continue
        try:
            # Before the clock starts: creating one may import its library (seconds).
            snap.provider(name)
        except RouterError as exc:
            results[name] = ProviderHealth(name, p.type, DOWN, "create", None, str(exc))
            continue
        t = threading.Thread(
            target=lambda n=name: results.__setitem__(n, _probe(snap, n, timeout, clock)),
            name=f"health:{name}",
            daemon=True,  # a probe stuck past its timeout must not keep the process up
        )
        t.start()
        threads.append((name, t))
    stop = clock() + timeout + 1.0
    for name, t in threads:
        t.join(max(0.0, stop - clock()))
        if name not in results:
            p = snap.config.providers[name]
            results[name] = ProviderHealth(
                name, p.type, DOWN, "probe", None, f"no answer within {timeout:g}s"
            )
    return [results[n] for n in names]


def _probe(snap: Snapshot, name: str, timeout: float, clock: Clock) -> ProviderHealth:
    p = snap.config.providers[name]
    models = [m for m in snap.config.models.values() if m.provider == name]
    notes: tuple[str, ...] = ()
    started = clock()
    try:
        provider = snap.provider(name)
        # Before the clock: the notes may import the backend's library (llama_cpp).
        notes = tuple(provider.health_notes())
        started = clock()
        did = provider.probe(models, timeout=timeout)
    except RouterError as exc:
        ms = (clock() - started) * 1000
        return ProviderHealth(name, p.type, DOWN, "probe", round(ms, 1), str(exc), notes=notes)
    ms = (clock() - started) * 1000
    return ProviderHealth(name, p.type, OK, did, round(ms, 1), notes=notes)


__all__ = ["DISABLED", "DOWN", "OK", "ProviderHealth", "check"]

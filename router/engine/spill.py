"""Local-first spill-over: a busy first candidate gives way to the next one.

A rule that prefers a local model (one request at a time, no bill) can say how busy
that model may be before a request goes elsewhere:

    spill: {queue: 2}       more than 2 requests already waiting for it
    spill: {wait_ms: 500}   its expected wait is longer than 500 ms: the requests in
                            flight times its measured latency per request

The busy model is not dropped: it moves to the end of the candidates, so it still
serves when everything after it fails. The trace says why, e.g.
"spilled: local queue 3 > 2". Only live counters are read (no I/O, no lock).
"""

from __future__ import annotations

from router.config.model import SpillPolicy
from router.engine.routing_state import RoutingState
from router.engine.strategies import Candidate


def spill(
    policy: SpillPolicy, kept: list[Candidate], state: RoutingState
) -> tuple[list[Candidate], str]:
    """`kept` with a busy first candidate moved last, and the note saying so ("" if not)."""
    if len(kept) < 2:
        return kept, ""
    first = kept[0].model.name
    in_flight = state.in_flight(first)
    if in_flight <= 0:
        return kept, ""
    waiting = in_flight - 1  # one is being served; the rest wait for it
    note = ""
    if policy.queue is not None and waiting > policy.queue:
        note = f"spilled: {first} queue {waiting} > {policy.queue}"
    elif policy.wait_ms is not None:
        latency = state.latency(first)
        if latency is not None:
            wait_ms = in_flight * latency * 1000
            if wait_ms > policy.wait_ms:
                note = f"spilled: {first} expected wait {wait_ms:.0f} ms > {policy.wait_ms:g} ms"
    if not note:
        return kept, ""
    return [*kept[1:], kept[0]], note


__all__ = ["spill"]

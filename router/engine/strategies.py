"""Strategies order the candidates that survived filtering.

A strategy is a function in `STRATEGIES`; adding one is adding an entry.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from router.config.model import ModelConfig
from router.engine.routing_state import RoutingState


@dataclass(slots=True)
class Candidate:
    """A model that survived filtering, with what strategies sort on."""

    model: ModelConfig
    cost: float | None  # estimated USD for this request; None when unknown
    weight: float


Strategy = Callable[[list[Candidate], str, RoutingState], list[Candidate]]


def ordered(cands: list[Candidate], rule: str, state: RoutingState) -> list[Candidate]:
    return cands


def cheapest(cands: list[Candidate], rule: str, state: RoutingState) -> list[Candidate]:
    # Unknown prices sort last; ties keep file order (sorted is stable).
    return sorted(cands, key=lambda c: math.inf if c.cost is None else c.cost)


def fastest(cands: list[Candidate], rule: str, state: RoutingState) -> list[Candidate]:
    def speed(c: Candidate) -> float:
        seen = state.latency(c.model.name)
        if seen is not None:
            return seen
        if c.model.latency_ms is not None:
            return c.model.latency_ms / 1000
        return math.inf

    return sorted(cands, key=speed)


def round_robin(cands: list[Candidate], rule: str, state: RoutingState) -> list[Candidate]:
    if len(cands) < 2:
        return cands
    k = state.next_index(f"rr:{rule}") % len(cands)
    return cands[k:] + cands[:k]


def weighted(cands: list[Candidate], rule: str, state: RoutingState) -> list[Candidate]:
    # Weighted order without replacement (Efraimidis-Spirakis): the first pick
    # follows the weights, the rest stay as fallbacks.
    if len(cands) < 2:
        return cands
    keyed = [(random.random() ** (1.0 / c.weight) if c.weight > 0 else 0.0, c) for c in cands]
    keyed.sort(key=lambda kc: kc[0], reverse=True)
    return [c for _, c in keyed]


def least_busy(cands: list[Candidate], rule: str, state: RoutingState) -> list[Candidate]:
    return sorted(cands, key=lambda c: state.in_flight(c.model.name))


STRATEGIES: Mapping[str, Strategy] = {
    "ordered": ordered,
    "cheapest": cheapest,
    "fastest": fastest,
    "round_robin": round_robin,
    "weighted": weighted,
    "least_busy": least_busy,
}

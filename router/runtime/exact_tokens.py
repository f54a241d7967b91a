"""`settings.exact_tokens`: count input tokens exactly before deciding.

Off (the default), the decision path does no I/O: input tokens are estimated from
characters. On, the request is decided once with the estimate, then its input is
counted by the chosen model's own counter (a local GGUF's tokenizer, Anthropic's
`count_tokens` endpoint) and, when that count differs, decided again with it, so
the context filter and cost estimates work from the real number. A backend with no
exact counter, or a count that fails, leaves the estimate in place.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from router.config.model import ModelConfig
from router.engine.decide import decide
from router.engine.strategies import Candidate
from router.errors import RouterError
from router.runtime.snapshot import Snapshot
from router.runtime.state.live import LiveState
from router.types import Decision, Request

log = logging.getLogger("router.tokens")


def exact_count(snap: Snapshot, request: Request, m: ModelConfig) -> int | None:
    """`m`'s own count of the request's input tokens; None where it has none."""
    model = m.name
    try:
        return snap.provider(m.provider).count_tokens(m, request.messages)
    except RouterError as exc:
        log.warning("exact token count by %s failed, using the estimate: %s", model, exc)
        return None


def redecide(
    snap: Snapshot,
    request: Request,
    state: LiveState,
    decision: Decision,
    cands: list[Candidate],
) -> tuple[Request, Decision, list[Candidate]]:
    """The decision again with the first candidate's exact count, if it has one."""
    if not cands:
        return request, decision, cands
    exact = exact_count(snap, request, cands[0].model)
    if exact is None or exact == request.tokens:
        return request, decision, cands
    request = replace(request, tokens=exact)
    decision, cands = decide(snap.ruleset, request, state, version=snap.version)
    return request, decision, cands


__all__ = ["exact_count", "redecide"]

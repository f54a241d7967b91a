"""The attempt loop: run the chosen candidates until one serves.

    for each candidate, then each of the rule's `fallback:` rule (and its fallback, ...):
        admit it: breaker (one probe when half-open), rate limit (skip or wait), budget
        call it; on a retryable error wait (backoff with full jitter, or the server's
        Retry-After) and call it again, up to `retries`; then move on
    context overflow: from then on only candidates with a larger window are tried
    auth error: the provider is disabled (with the reason) and its other models skipped
    the deadline (the rule's, else the settings') bounds all of it; each call gets the
    time that is left as its timeout

Streams fail over the same way until the first piece of text has gone to the caller;
after that the error is raised with `partial=True`. Every failed or skipped try is in
`Result.attempts`, and `Result.model` / `Result.rule` name what really served.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from router.config.model import ModelConfig, RetryPolicy
from router.engine.decide import candidates, effective_max_tokens
from router.engine.ruleset import CompiledRule
from router.engine.strategies import Candidate
from router.errors import BudgetExceeded, ContextOverflow, NoRouteError, ProviderError
from router.providers.base import Call, Completion, Delta, Provider
from router.runtime.calls import cost_of, make_call, render_messages
from router.runtime.retry import MAX_RETRY_AFTER, backoff_delay, is_retryable, retry_after_of
from router.runtime.snapshot import Snapshot
from router.runtime.state.live import LiveState, Ticket
from router.runtime.state.usage import UsageRecord
from router.types import Attempt, Chunk, Decision, Request, Result, Usage

DEFAULT_PROVIDER_TIMEOUT = 60.0  # seconds per call when a provider sets no `timeout`
SKIPPED = "skipped"  # Attempt.error of a candidate that was not called, with the reason


def check_budget(snap: Snapshot, decision: Decision) -> None:
    """`on_budget: error`: raise `BudgetExceeded` rather than serve with what a spent
    budget left over (a cheaper model, or the next rule).

    Raised when a budget took out a model ranked (in the rule's target order) before
    the one chosen, or when it left a matched rule with no candidate at all.
    """
    for trace in decision.rules:
        if not trace.matched or not trace.rejected:
            continue
        rule = snap.ruleset.by_name.get(trace.rule)
        if rule is None or rule.config.on_budget != "error":
            continue
        spent = [(m, why) for m, why in trace.rejected.items() if why.startswith("budget spent")]
        if spent and trace.rule == decision.rule and decision.model is not None:
            order = rule.config.targets
            chosen = order.index(decision.model) if decision.model in order else len(order)
            spent = [(m, w) for m, w in spent if m in order and order.index(m) < chosen]
        if spent:
            model, why = spent[0]
            raise BudgetExceeded(f"rule {trace.rule}: {model}: {why}", decision)


class _Run:
    """One request's way through its candidates; the four drivers below share it."""

    def __init__(
        self,
        snap: Snapshot,
        request: Request,
        decision: Decision,
        cands: Sequence[Candidate],
        state: LiveState,
    ) -> None:
        assert decision.rule is not None
        self.snap = snap
        self.request = request
        self.decision = decision
        self.state = state
        self.started = time.perf_counter()
        self.setup_s = 0.0  # creating adapters (importing litellm): not the request's latency
        rule = snap.ruleset.by_name[decision.rule]
        self.rule = rule  # the rule whose candidates are being tried
        self.queue: deque[tuple[CompiledRule, Candidate]] = deque((rule, c) for c in cands)
        self.rules_seen = {rule.name}
        self.attempts: list[Attempt] = []
        self.done: set[str] = set()  # models given up on: not tried again by a fallback rule
        self.min_context = 0  # after a context overflow, only larger windows
        limit = rule.config.deadline
        self.limit = limit if limit is not None else snap.config.settings.deadline
        self.deadline = None if self.limit is None else time.monotonic() + self.limit
        self.expired = False

    # -- which candidate next -------------------------------------------------------

    def next(self) -> tuple[CompiledRule, Candidate] | None:
        while not self.expired:
            while self.queue:
                rule, cand = self.queue.popleft()
                m = cand.model
                if m.name in self.done:
                    continue
                if m.context <= self.min_context:
                    self.skip(m, f"context {m.context} is not larger than one that overflowed")
                    self.done.add(m.name)
                    continue
                return rule, cand
            if not self._follow_fallback():
                return None
        return None

    def _follow_fallback(self) -> bool:
        name = self.rule.config.fallback
        if name is None or name in self.rules_seen or self.request.model is not None:
            return False  # a pinned model is not swapped for a fallback rule's
        target = self.snap.ruleset.by_name.get(name)
        if target is None:
            return False
        self.rules_seen.add(name)
        self.rule = target
        default = self.snap.config.settings.default_max_tokens
        kept, rejected = candidates(target, self.request, self.state, default, self.snap.ruleset)
        for model, why in rejected.items():
            if model not in self.done:
                self.skip(self.snap.config.models[model], f"rule {name}: {why}")
                self.done.add(model)
        self.queue.extend((target, c) for c in kept)
        return True

    def more_to_try(self) -> bool:
        if any(c.model.name not in self.done for _, c in self.queue):
            return True
        name = self.rule.config.fallback
        return name is not None and name not in self.rules_seen and self.request.model is None

    # -- one try ----------------------------------------------------------------------

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _admission(self, rule: CompiledRule, cand: Candidate) -> tuple[int, float | None] | None:
        """Tokens to reserve and the rate-limit wait deadline; None when out of time."""
        left = self.left()
        if left is not None and left <= 0:
            self.expired = True
            return None
        tokens = self.request.tokens + effective_max_tokens(
            rule, self.request, self.snap.config.settings.default_max_tokens, cand.model
        )
        wait = None
        if rule.config.on_rate_limit == "wait":
            wait = self.deadline if self.deadline is not None else float("inf")
        return tokens, wait

    def _admitted(self, rule: CompiledRule, cand: Candidate, got: Ticket | str) -> Ticket | None:
        if isinstance(got, Ticket):
            return got
        if got.startswith("budget spent") and rule.config.on_budget == "error":
            raise BudgetExceeded(f"rule {rule.name}: {cand.model.name}: {got}", self.decision)
        self.skip(cand.model, got)
        self.done.add(cand.model.name)
        return None

    def admit(self, rule: CompiledRule, cand: Candidate) -> Ticket | None:
        plan = self._admission(rule, cand)
        if plan is None:
            return None
        tokens, wait = plan
        got = self.state.admit(
            cand.model.name, rule.name, tokens, cand.cost or 0.0, wait_until=wait
        )
        return self._admitted(rule, cand, got)

    async def aadmit(self, rule: CompiledRule, cand: Candidate) -> Ticket | None:
        plan = self._admission(rule, cand)
        if plan is None:
            return None
        tokens, wait = plan
        got = await self.state.aadmit(
            cand.model.name, rule.name, tokens, cand.cost or 0.0, wait_until=wait
        )
        return self._admitted(rule, cand, got)

    def provider(self, name: str) -> Provider:
        """The snapshot's adapter; the time it takes to create (a first import of litellm,
        seconds) is kept out of `latency_s` and of the `fastest` average."""
        t0 = time.perf_counter()
        try:
            return self.snap.provider(name)
        finally:
            self.setup_s += time.perf_counter() - t0

    def call(self, rule: CompiledRule, model: ModelConfig) -> Call:
        """The call, rendered once per candidate: a template error is the request's
        fault, raised before anything is held or sent."""
        max_tokens = effective_max_tokens(
            rule, self.request, self.snap.config.settings.default_max_tokens, model
        )
        return make_call(rule, self.request, model, max_tokens=max_tokens)

    def timed(self, call: Call) -> Call:
        """`call` with the provider's timeout, cut to the time the deadline leaves."""
        timeout = self.snap.config.providers[call.model.provider].timeout
        if timeout is None:
            timeout = DEFAULT_PROVIDER_TIMEOUT
        left = self.left()
        if left is not None:
            timeout = left if timeout is None else min(timeout, left)
        return call if timeout == call.timeout else replace(call, timeout=timeout)

    def policy(self, rule: CompiledRule, model: ModelConfig) -> RetryPolicy:
        if rule.config.retry is not None:
            return rule.config.retry
        return self.snap.config.providers[model.provider].retry

    def failed(
        self,
        ticket: Ticket,
        rule: CompiledRule,
        model: ModelConfig,
        exc: ProviderError,
        started: float,
        tries: int,
    ) -> float | None:
        """Count a failure. Seconds to wait before calling `model` again, or None: move on."""
        self.state.failed(ticket, exc)
        self.attempts.append(
            Attempt(
                model.name, model.provider, exc.kind, exc.describe(), time.perf_counter() - started
            )
        )
        if exc.unreachable:
            # Nothing listens there: no retry against the same dead endpoint; the model
            # is marked down for its breaker's cooldown and the next candidate tried.
            self.state.mark_down(model.name, f"{exc.describe()}")
            self.done.add(model.name)
            return None
        if isinstance(exc, ContextOverflow):
            self.min_context = max(self.min_context, model.context)
        retry_after = retry_after_of(exc)
        if retry_after is not None and retry_after > 0:
            self.state.hold(model.name, min(retry_after, MAX_RETRY_AFTER))
        policy = self.policy(rule, model)
        if not is_retryable(exc) or tries >= policy.retries:
            self.done.add(model.name)
            return None
        delay = backoff_delay(tries, policy, retry_after)
        left = self.left()
        too_long = retry_after is not None and retry_after > policy.max_backoff
        if (left is not None and delay >= left) or (too_long and self.more_to_try()):
            # Waiting would not fit, or another candidate can serve sooner than the
            # server asked us to come back: the model stays held for that long.
            self.done.add(model.name)
            return None
        return delay

    def abandoned(self, ticket: Ticket) -> None:
        self.state.failed(ticket)

    def succeeded(
        self, ticket: Ticket, rule: CompiledRule, model: ModelConfig, done: Completion, t0: float
    ) -> Result:
        cost = cost_of(model, done.usage, done.cost_usd)
        record = UsageRecord(
            time.time(),
            model.name,
            model.provider,
            rule.name,
            done.usage.input_tokens,
            done.usage.output_tokens,
            cost or 0.0,
            self.snap.config.sha256,
            price_known=cost is not None,
        )
        self.state.succeeded(ticket, record, latency_s=time.perf_counter() - t0)
        return Result(
            text=done.text,
            model=model.name,
            provider=model.provider,
            usage=done.usage,
            cost_usd=cost,
            latency_s=time.perf_counter() - self.started - self.setup_s,
            decision=self.decision,
            attempts=tuple(self.attempts),
            rule=rule.name,
            finish_reason=done.finish_reason,
            tool_calls=done.tool_calls,
        )

    def skip(self, model: ModelConfig, why: str) -> None:
        self.attempts.append(Attempt(model.name, model.provider, SKIPPED, why, 0.0))

    def exhausted(self) -> NoRouteError:
        counts: dict[tuple[str, str], int] = {}
        for a in self.attempts:
            counts[(a.model, a.error)] = counts.get((a.model, a.error), 0) + 1
        tried = ", ".join(
            f"{m} ({kind}{f' x{n}' if n > 1 else ''})" for (m, kind), n in counts.items()
        )
        head = f"deadline of {self.limit:g}s reached" if self.expired else "every candidate failed"
        lines = [f"{head}: {tried or 'nothing was tried'}"]
        lines += [f"  {a.model} ({a.provider}, {a.error}): {a.message}" for a in self.attempts]
        return NoRouteError("\n".join(lines), self.decision, self.attempts)


class _Received:
    """What one try's stream has delivered: text, then (from its last pieces) usage,
    finish reason, the cost the adapter reported and the assembled tool calls."""

    __slots__ = ("cost", "finish", "parts", "tool_calls", "usage")

    def __init__(self) -> None:
        self.parts: list[str] = []  # not empty once text has gone to the caller
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.cost: float | None = None
        self.tool_calls: tuple[Mapping[str, Any], ...] | None = None

    def take(self, delta: Delta) -> str:
        """Note `delta`; returns its text, to pass on when there is some."""
        if delta.text:
            self.parts.append(delta.text)
        if delta.tool_calls is not None:
            self.tool_calls = delta.tool_calls
        if delta.usage is not None:
            self.usage, self.finish, self.cost = delta.usage, delta.finish_reason, delta.cost_usd
        return delta.text

    def completion(self) -> Completion:
        text = "".join(self.parts)
        usage = self.usage or Usage(estimated=True)
        return Completion(text, usage, self.finish, self.tool_calls, self.cost)


def execute(
    snap: Snapshot,
    request: Request,
    decision: Decision,
    cands: Sequence[Candidate],
    state: LiveState,
) -> Result:
    run = _Run(snap, request, decision, cands, state)
    while (item := run.next()) is not None:
        rule, cand = item
        model, tries = cand.model, 0
        call = run.call(rule, model)
        while (ticket := run.admit(rule, cand)) is not None:
            started = time.perf_counter()
            try:
                provider = run.provider(model.provider)
                started = time.perf_counter()  # a library import is not the call's latency
                done = provider.complete(run.timed(call))
            except ProviderError as exc:
                delay = run.failed(ticket, rule, model, exc, started, tries)
                if delay is None:
                    break
                time.sleep(delay)
                tries += 1
                continue
            except BaseException:
                run.abandoned(ticket)
                raise
            return run.succeeded(ticket, rule, model, done, started)
    raise run.exhausted()


async def aexecute(
    snap: Snapshot,
    request: Request,
    decision: Decision,
    cands: Sequence[Candidate],
    state: LiveState,
) -> Result:
    run = _Run(snap, request, decision, cands, state)
    while (item := run.next()) is not None:
        rule, cand = item
        model, tries = cand.model, 0
        call = run.call(rule, model)
        while (ticket := await run.aadmit(rule, cand)) is not None:
            started = time.perf_counter()
            try:
                provider = run.provider(model.provider)
                started = time.perf_counter()
                done = await provider.acomplete(run.timed(call))
            except ProviderError as exc:
                delay = run.failed(ticket, rule, model, exc, started, tries)
                if delay is None:
                    break
                await asyncio.sleep(delay)
                tries += 1
                continue
            except BaseException:  # cancellation included: give back what was held
                run.abandoned(ticket)
                raise
            return run.succeeded(ticket, rule, model, done, started)
    raise run.exhausted()


def execute_stream(
    snap: Snapshot,
    request: Request,
    decision: Decision,
    cands: Sequence[Candidate],
    state: LiveState,
) -> Iterator[Chunk]:
    run = _Run(snap, request, decision, cands, state)
    while (item := run.next()) is not None:
        rule, cand = item
        model, tries = cand.model, 0
        call = run.call(rule, model)
        while (ticket := run.admit(rule, cand)) is not None:
            started = time.perf_counter()
            got = _Received()
            try:
                provider = run.provider(model.provider)
                started = time.perf_counter()
                for delta in provider.stream(run.timed(call)):
                    if got.take(delta):
                        yield Chunk(delta.text, model.name)
            except ProviderError as exc:
                if got.parts:
                    exc.partial = True  # the caller holds part of an answer: no failover
                    run.failed(ticket, rule, model, exc, started, tries)
                    raise
                delay = run.failed(ticket, rule, model, exc, started, tries)
                if delay is None:
                    break
                time.sleep(delay)
                tries += 1
                continue
            except BaseException:  # the caller stopped reading, or worse
                run.abandoned(ticket)
                raise
            done = got.completion()
            yield Chunk("", model.name, run.succeeded(ticket, rule, model, done, started))
            return
    raise run.exhausted()


async def aexecute_stream(
    snap: Snapshot,
    request: Request,
    decision: Decision,
    cands: Sequence[Candidate],
    state: LiveState,
) -> AsyncIterator[Chunk]:
    run = _Run(snap, request, decision, cands, state)
    while (item := run.next()) is not None:
        rule, cand = item
        model, tries = cand.model, 0
        call = run.call(rule, model)
        while (ticket := await run.aadmit(rule, cand)) is not None:
            started = time.perf_counter()
            got = _Received()
            try:
                provider = run.provider(model.provider)
                started = time.perf_counter()
                async for delta in provider.astream(run.timed(call)):
                    if got.take(delta):
                        yield Chunk(delta.text, model.name)
            except ProviderError as exc:
                if got.parts:
                    exc.partial = True
                    run.failed(ticket, rule, model, exc, started, tries)
                    raise
                delay = run.failed(ticket, rule, model, exc, started, tries)
                if delay is None:
                    break
                await asyncio.sleep(delay)
                tries += 1
                continue
            except BaseException:
                run.abandoned(ticket)
                raise
            done = got.completion()
            yield Chunk("", model.name, run.succeeded(ticket, rule, model, done, started))
            return
    raise run.exhausted()


__all__ = [
    "SKIPPED",
    "aexecute",
    "aexecute_stream",
    "check_budget",
    "cost_of",
    "execute",
    "execute_stream",
    "make_call",
    "render_messages",
]

"""The attempt loop's decisions, written once: what to try next, when to stop, what to record.

    for each candidate, then each of the rule's `fallback:` rule (and its fallback, ...):
        admit it: breaker (one probe when half-open), rate limit (skip or wait), budget
        call it; on a retryable error wait (backoff with full jitter, or the server's
        Retry-After) and call it again, up to `retries`; then move on
    context overflow: from then on only candidates with a larger window are tried
    auth error: the provider is disabled (with the reason) and its other models skipped
    the deadline (the rule's, else the settings') bounds all of it; each call gets a
    share of the time that is left (`Run.timed`), so a slow first candidate cannot
    starve the ones after it; a call cut to its share that times out is not retried
    while another candidate is left
    a rule's `hedge:` starts the next candidate beside a first that is slow to answer
    (`hedge.race`)

Time spent creating adapters (a first import of litellm, seconds) counts neither in a
request's latency nor against its deadline.

`plan(run)` is that loop as a generator of steps, doing no I/O itself. A driver (sync or
async, streamed or not: `attempts.py`) performs each step (`steps.py`) and sends back
its outcome, and gets the `Result` as the generator's return value, or `NoRouteError`
raised. A fix to the loop is made here, once, for all four drivers.

Streams fail over the same way until the first piece of text has gone to the caller;
after that the error is raised with `partial=True`. Every failed or skipped try is in
`Result.attempts`, and `Result.model` / `Result.rule` name what really served.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import replace

from router.config.model import ModelConfig, RetryPolicy
from router.engine.decide import candidates, effective_max_tokens
from router.engine.ruleset import CompiledRule
from router.engine.strategies import Candidate
from router.errors import ContextOverflow, NoRouteError, ProviderError, Timeout
from router.providers.base import Call, Completion, Provider
from router.runtime.calls import cost_of, make_call
from router.runtime.hedge import Try, race
from router.runtime.retry import MAX_RETRY_AFTER, backoff_delay, is_retryable, retry_after_of
from router.runtime.snapshot import Snapshot
from router.runtime.state.live import LiveState, Ticket
from router.runtime.state.spend import raise_if_budget_error
from router.runtime.state.usage import UsageRecord
from router.runtime.steps import RACING, Admit, Invoke, Outcome, Pause, Step
from router.types import Attempt, Decision, Rejection, Request, Result

DEFAULT_PROVIDER_TIMEOUT = 60.0  # seconds per call when a provider sets no `timeout`
SKIPPED = "skipped"  # Attempt.error of a candidate that was not called, with the reason
# The deadline's share per call: what is left over the candidates left, but never
# less than this (a 10-candidate chain must not give each call 0.2 s) nor more than
# what is left, nor more than the provider's own timeout.
MIN_SHARE = 1.0
# A call is never sent with a timeout below this: clients refuse zero or negative
# timeouts ("Timeout value out of range"); the loop notices the deadline after it.
MIN_TIMEOUT = 0.01

Plan = Generator[Step, Outcome, Result]


def plan(run: Run) -> Plan:
    """The loop over candidates, tries and fallbacks; see the module's docstring."""
    while (item := run.next()) is not None:
        rule, cand = item
        model, tries = cand.model, 0
        call = run.call(rule, model)
        while True:
            ticket = yield Admit(rule, cand)
            if not isinstance(ticket, Ticket):
                break
            started = time.perf_counter()
            run.setup_at_try = run.setup_s
            outcome = yield Invoke(ticket, call, run.hedge_after(rule) if tries == 0 else None)
            if outcome is RACING:
                result = yield from race(run, Try(ticket, rule, model, started))
                if result is not None:
                    return result
                break
            if isinstance(outcome, Completion):
                return run.succeeded(ticket, rule, model, outcome, started)
            assert isinstance(outcome, ProviderError)
            delay = run.failed(ticket, rule, model, outcome, started, tries)
            if outcome.partial:  # the caller holds part of an answer: no failover
                raise outcome
            if delay is None:
                break
            yield Pause(delay)
            tries += 1
    raise run.exhausted()


class Run:
    """One request's way through its candidates: the state `plan` decides with."""

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
        self.setup_at_try = 0.0
        rule = snap.ruleset.rule_named(decision.rule)  # a config rule, or a pinned model's
        assert rule is not None
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
        self.cut = False  # the last call's timeout is its share of the deadline
        self.streaming = False  # set by the stream drivers: no hedge

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

    # -- admission ----------------------------------------------------------------------

    def left(self) -> float | None:
        """Seconds the deadline leaves; adapter creation (`setup_s`) does not count."""
        if self.deadline is None:
            return None
        return self.deadline + self.setup_s - time.monotonic()

    def candidates_left(self) -> int:
        """The call about to be made, the untried candidates queued, and one for a
        fallback rule still to come (its candidates are not known yet)."""
        queued = sum(1 for _, c in self.queue if c.model.name not in self.done)
        name = self.rule.config.fallback
        more = name is not None and name not in self.rules_seen and self.request.model is None
        return 1 + queued + more

    def hedge_after(self, rule: CompiledRule) -> float | None:
        """Seconds before the next candidate starts beside this call; None: no hedge.
        Streams do not hedge (`stream` drivers never see one)."""
        hedge = rule.config.hedge
        if hedge is None or self.streaming or not self.more_to_try():
            return None
        return hedge.after_ms / 1000.0

    def _admission(self, rule: CompiledRule, model: ModelConfig) -> tuple[int, float | None] | None:
        """Tokens to reserve and the rate-limit wait deadline; None when out of time."""
        left = self.left()
        if left is not None and left <= 0:
            self.expired = True
            return None
        tokens = self.request.tokens + effective_max_tokens(
            rule, self.request, self.snap.config.settings.default_max_tokens, model
        )
        wait = None
        if rule.config.on_rate_limit == "wait":
            wait = self.deadline if self.deadline is not None else float("inf")
        return tokens, wait

    def _admitted(
        self, rule: CompiledRule, cand: Candidate, got: Ticket | Rejection
    ) -> Ticket | None:
        if isinstance(got, Ticket):
            return got
        raise_if_budget_error(rule.config, cand.model.name, got, self.decision)
        self.skip(cand.model, got)
        self.done.add(cand.model.name)
        return None

    def admit(self, step: Admit) -> Ticket | None:
        plan = self._admission(step.rule, step.cand.model)
        if plan is None:
            return None
        tokens, wait = plan
        name, cost = step.cand.model.name, step.cand.cost or 0.0
        got = self.state.admit(name, step.rule.name, tokens, cost, wait_until=wait)
        return self._admitted(step.rule, step.cand, got)

    async def aadmit(self, step: Admit) -> Ticket | None:
        plan = self._admission(step.rule, step.cand.model)
        if plan is None:
            return None
        tokens, wait = plan
        name, cost = step.cand.model.name, step.cand.cost or 0.0
        got = await self.state.aadmit(name, step.rule.name, tokens, cost, wait_until=wait)
        return self._admitted(step.rule, step.cand, got)

    # -- one try ----------------------------------------------------------------------

    def call(self, rule: CompiledRule, model: ModelConfig) -> Call:
        """The call, rendered once per candidate: a template error is the request's
        fault, raised before anything is held or sent."""
        max_tokens = effective_max_tokens(
            rule, self.request, self.snap.config.settings.default_max_tokens, model
        )
        return make_call(rule, self.request, model, max_tokens=max_tokens)

    def provider(self, name: str) -> Provider:
        """The snapshot's adapter; the time it takes to create (a first import of litellm,
        seconds) is kept out of `latency_s` and of the `fastest` average."""
        t0 = time.perf_counter()
        try:
            return self.snap.provider(name)
        finally:
            self.setup_s += time.perf_counter() - t0

    def prepare(self, call: Call) -> tuple[Provider, Call]:
        """The adapter for `call` and the call with its timeout: the adapter first, so
        the time it takes to create does not shorten the call's share."""
        provider = self.provider(call.model.provider)
        return provider, self.timed(call)

    def timed(self, call: Call) -> Call:
        """`call` with the provider's timeout, cut to its share of the deadline:

        min(provider timeout, max(left / candidates left, min(MIN_SHARE, left)))
        """
        own = self.snap.config.providers[call.model.provider].timeout
        timeout = DEFAULT_PROVIDER_TIMEOUT if own is None else own
        self.cut = False
        left = self.left()
        if left is not None:
            share = max(left / self.candidates_left(), min(MIN_SHARE, left))
            if share < timeout:
                timeout, self.cut = share, True
        timeout = max(timeout, MIN_TIMEOUT)
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
            self.state.mark_down(model.name, exc.describe())
            self.done.add(model.name)
            return None
        if isinstance(exc, Timeout) and self.cut and self.more_to_try():
            # It had its share and did not answer: the next candidate gets the rest.
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
        """The try ended by something other than an answer or a ProviderError."""
        self.state.failed(ticket)

    def bill(
        self, ticket: Ticket, model: ModelConfig, done: Completion, latency: float | None
    ) -> None:
        """Count an answer's spend: one usage row per answer the provider charged for."""
        cost = cost_of(model, done.usage, done.cost_usd)
        record = UsageRecord(
            time.time(),
            model.name,
            model.provider,
            ticket.rule or "",
            done.usage.input_tokens,
            done.usage.output_tokens,
            cost or 0.0,
            self.snap.config.sha256,
            price_known=cost is not None,
            key=self.request.key,
        )
        self.state.succeeded(ticket, record, latency_s=latency)

    def succeeded(
        self, ticket: Ticket, rule: CompiledRule, model: ModelConfig, done: Completion, t0: float
    ) -> Result:
        setup = self.setup_s - self.setup_at_try
        self.bill(ticket, model, done, time.perf_counter() - t0 - setup)
        cost = cost_of(model, done.usage, done.cost_usd)
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


__all__ = ["SKIPPED", "Plan", "Run", "plan"]

"""`LiveState`: what the router knows from serving, for the engine and for people.

It implements the engine's `RoutingState` (circuit breakers, budgets, rate limits,
latency, in-flight counts, round-robin counters, providers disabled by an auth error)
and shows all of it in `status()`. It outlives configs: `update_config()` keeps the
state of every model that is still there.

`unavailable_reason()` runs per candidate per request: it reads dicts that are only
ever replaced whole, takes no lock and does no I/O.

Reasons are `Rejection` values (a kind and the text people read); spend policy (free
models, budgets) is `spend.SpendPolicy`'s.

Where the state lives is the backend's (stores.py, from `settings.state`): this
process, or a Redis shared by a fleet of routers, where `admit()` makes at most one
round trip and what follows a call is queued.

The attempt loop drives one try through `admit()` then `succeeded()` or `failed()`:

    ticket = state.admit(model, rule, tokens, est_cost)   # a Ticket, or the Rejection
    ... call the model ...
    state.succeeded(ticket, usage_record)  |  state.failed(ticket, exc)
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from router.config.model import BreakerPolicy, Config
from router.errors import AuthError, BadRequest, ProviderError
from router.runtime.state.breaker import BreakerState, CircuitBreaker
from router.runtime.state.budgets import Reservation
from router.runtime.state.ratelimit import limits_of
from router.runtime.state.spend import ServesFree, SpendPolicy
from router.runtime.state.stores import Backend, open_backend
from router.runtime.state.usage import (
    UsageRecord,
    UsageStore,
    UsageStoreError,
    usage_path,
)
from router.types import (
    LiveStatus,
    ModelState,
    ProviderState,
    Rejection,
    RejectionKind,
    SpendTotals,
)

Clock = Callable[[], float]
log = logging.getLogger("router.state")

_CLOSED = BreakerState("closed", 0, None)
_DEADLINE = Rejection(RejectionKind.RATE_LIMIT, "rate limit: deadline reached")


def _deadline(wait_until: float) -> float | None:
    """A rate-limit wait's monotonic deadline; inf waits as long as it takes."""
    return None if wait_until == float("inf") else wait_until


@dataclass(slots=True)
class Ticket:
    """One admitted try: what must be given back or counted when it ends."""

    model: str
    rule: str | None
    tokens: int
    started: float  # monotonic
    reservation: Reservation
    breaker: CircuitBreaker | None  # set when this try holds the half-open probe
    done: bool = False


def counts_against_breaker(exc: ProviderError) -> bool:
    """Failures of the model, not of the request: bad requests say nothing of its health,
    and an auth error disables the whole provider instead."""
    return not isinstance(exc, (BadRequest, AuthError))


class LiveState:
    def __init__(
        self,
        config: Config,
        store: UsageStore | None = None,
        *,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
        sleep: Callable[[float], None] = time.sleep,
        serves_free: ServesFree | None = None,
        backend: Backend | None = None,
    ) -> None:
        """`serves_free`: what providers say of a model's price (the Router passes
        `router.providers.serves_free`); without it only YAML prices of 0 are free.
        `backend`: where state lives; by default what `settings.state` names (this
        process, or a Redis shared by every router pointed at it). A reload does not
        move it."""
        self._backend = backend if backend is not None else open_backend(config.settings.state)
        self._clock = clock
        self.serves_free = serves_free
        self._wall = wall
        self._lock = threading.Lock()  # counters and config swaps; never on the read path
        self._update_lock = threading.Lock()  # one update_config at a time
        self._owned_path = None if store is not None else usage_path(config)
        self.store: UsageStore = (
            store if store is not None else self._backend.usage_store(usage_path(config))
        )
        self._owns_store = store is None
        self._old_stores: list[UsageStore] = []
        self._closed = False
        self.budgets = self._backend.budgets(config.budgets, self.store, wall)
        self.rate_limits = self._backend.rate_limiter(
            limits_of(config.models.values()), clock, sleep
        )
        self._breakers: dict[str, CircuitBreaker] = {}
        self.counters = self._backend.counters()
        self._disabled: dict[str, str] = {}  # provider -> why (auth errors)
        self._held: dict[str, tuple[float, str]] = {}  # model -> (until, why): Retry-After
        self._config_state = config.settings.state
        self._apply(config)
        self._fleet_breakers(config)

    def _fleet_breakers(self, config: Config) -> None:
        """Shared state: a breaker per model from the start, so a circuit another
        process opened is seen here before this process has called the model."""
        if self._backend.shared:
            for name in config.models:
                self.breaker(name)

    def use_price_source(self, serves_free: ServesFree) -> None:
        """Take what providers say of their models' prices (when built without it)."""
        with self._lock:
            self.serves_free = serves_free
            self.spend = SpendPolicy(self.config, self.budgets, serves_free)

    def _apply(self, config: Config) -> None:
        self.config = config
        self._models = dict(config.models)
        self._provider_of = {m.name: m.provider for m in config.models.values()}
        self._provider_ids = {n: p.identity() for n, p in config.providers.items()}
        self.spend = SpendPolicy(config, self.budgets, self.serves_free)
        self._wait_rules = frozenset(r.name for r in config.rules if r.on_rate_limit == "wait")

    # -- RoutingState (hot path) --------------------------------------------------

    def unavailable_reason(self, model: str, rule: str) -> Rejection | None:
        if self._held:
            held = self._held.get(model)
            if held is not None and self._clock() < held[0]:
                return Rejection(RejectionKind.HELD, held[1])
        if self._disabled:
            why = self._disabled_reason(model)
            if why is not None:
                return why
        breaker = self._breakers.get(model)
        if breaker is not None:
            text = breaker.unavailable_reason()
            if text is not None:
                return Rejection(RejectionKind.CIRCUIT, text)
        refused = self.spend.refusal(model, rule)
        if refused is not None:
            return refused
        if rule not in self._wait_rules:
            text = self.rate_limits.check(model)
            return None if text is None else Rejection(RejectionKind.RATE_LIMIT, text)
        return None

    def _disabled_reason(self, model: str) -> Rejection | None:
        provider = self._provider_of.get(model)
        if provider is None and "/" in model:  # `<provider>/<id>`, named by the caller
            provider = model.partition("/")[0]
        why = self._disabled.get(provider) if provider is not None else None
        if why is None:
            return None
        return Rejection(RejectionKind.DISABLED, f"provider {provider} disabled: {why}")

    def latency(self, model: str) -> float | None:
        return self.counters.latency(model)

    def in_flight(self, model: str) -> int:
        return self.counters.in_flight(model)

    def next_index(self, key: str) -> int:
        return self.counters.next_index(key)

    # -- the attempt loop -----------------------------------------------------------

    def breaker(self, model: str) -> CircuitBreaker:
        b = self._breakers.get(model)
        if b is not None:
            return b
        with self._lock:
            b = self._breakers.get(model)
            if b is None:
                m = self._models.get(model)
                policy = m.breaker if m is not None else BreakerPolicy()
                b = self._backend.breaker(model, policy, self._clock, self._wall)
                self._breakers = {**self._breakers, model: b}
            return b

    def admit(
        self,
        model: str,
        rule: str | None,
        tokens: int = 0,
        estimated_cost: float = 0.0,
        *,
        wait_until: float | None = None,
    ) -> Ticket | Rejection:
        """Claim a try at `model`: breaker probe, rate limit, budget. The Rejection if refused.

        `wait_until` (a `time.monotonic` deadline, or inf): wait for the rate limit instead
        of refusing; the rule's `on_rate_limit: wait`.
        """
        probe, why = self._probe(model, rule)
        if why is not None:
            return why
        if wait_until is None:
            if not self.spend.is_free(model):
                # Shared state: the rate limit and the budget in one round trip.
                joint = self._backend.admit(
                    self.rate_limits, self.budgets, model, rule, tokens, estimated_cost
                )
                if isinstance(joint, Rejection):
                    self._unprobe(probe)
                    return joint
                if joint is not None:
                    return self._ticket(model, rule, tokens, joint, probe)
            text = self.rate_limits.try_acquire(model, tokens)
            slot = None if text is None else Rejection(RejectionKind.RATE_LIMIT, text)
        else:
            try:
                got = self.rate_limits.acquire_wait(model, tokens, _deadline(wait_until))
            except BaseException:  # interrupted while waiting: the probe goes back
                self._unprobe(probe)
                raise
            slot = None if got else self._rate_limited(model, tokens)
        return self._admitted(model, rule, tokens, estimated_cost, probe, slot)

    async def aadmit(
        self,
        model: str,
        rule: str | None,
        tokens: int = 0,
        estimated_cost: float = 0.0,
        *,
        wait_until: float | None = None,
    ) -> Ticket | Rejection:
        """`admit()` for asyncio: a rate-limit wait does not block the event loop."""
        if wait_until is None:  # nothing to wait for: the same steps as `admit`
            return self.admit(model, rule, tokens, estimated_cost)
        probe, why = self._probe(model, rule)
        if why is not None:
            return why
        try:
            got = await self.rate_limits.aacquire_wait(model, tokens, _deadline(wait_until))
        except BaseException:  # cancelled while waiting: the probe goes back
            self._unprobe(probe)
            raise
        slot = None if got else self._rate_limited(model, tokens)
        return self._admitted(model, rule, tokens, estimated_cost, probe, slot)

    def _admitted(
        self,
        model: str,
        rule: str | None,
        tokens: int,
        estimated_cost: float,
        probe: CircuitBreaker | None,
        refused: Rejection | None,
    ) -> Ticket | Rejection:
        """After the rate limit (`refused` says if it said no): the budget, or give back."""
        if refused is not None:
            self._unprobe(probe)
            return refused
        return self._reserve(model, rule, tokens, estimated_cost, probe)

    def _rate_limited(self, model: str, tokens: int) -> Rejection:
        """A rate-limit wait ended at the deadline without a slot."""
        text = self.rate_limits.check(model, tokens)
        return _DEADLINE if text is None else Rejection(RejectionKind.RATE_LIMIT, text)

    def _probe(
        self, model: str, rule: str | None
    ) -> tuple[CircuitBreaker | None, Rejection | None]:
        if self._disabled:
            why = self._disabled_reason(model)
            if why is not None:
                return None, why
        b = self._breakers.get(model)
        if b is None:
            return None, None
        was_open = not b.closed
        text = b.acquire()
        if text is not None:
            return None, Rejection(RejectionKind.CIRCUIT, text)
        return (b if was_open else None), None

    def _unprobe(self, probe: CircuitBreaker | None) -> None:
        if probe is not None:
            probe.release()

    def _reserve(
        self,
        model: str,
        rule: str | None,
        tokens: int,
        estimated_cost: float,
        probe: CircuitBreaker | None,
    ) -> Ticket | Rejection:
        res = self.spend.reserve(model, rule, estimated_cost)
        if isinstance(res, Rejection):
            self.rate_limits.release(model, tokens)
            self._unprobe(probe)
            return res
        return self._ticket(model, rule, tokens, res, probe)

    def _ticket(
        self,
        model: str,
        rule: str | None,
        tokens: int,
        res: Reservation,
        probe: CircuitBreaker | None,
    ) -> Ticket:
        self.counters.enter(model)
        return Ticket(model, rule, tokens, self._clock(), res, probe)

    def succeeded(
        self, ticket: Ticket, record: UsageRecord | None = None, latency_s: float | None = None
    ) -> None:
        """The try served: count its spend and tokens, close a half-open breaker."""
        if ticket.done:
            return
        ticket.done = True
        self._end(ticket)
        cost = record.cost_usd if record is not None else 0.0
        # Memory first, then the store: a reload seeding totals in between would
        # rather miss one request than count it twice.
        self.budgets.commit(ticket.reservation, cost)
        if record is not None:
            try:
                self.store.record(record)
            except Exception as exc:  # e.g. SQLite locked by another process past its timeout
                # The answer is served and paid for; this process's budgets counted it
                # above. Losing the caller's result over a spend-log row would be worse.
                log.error("usage of %s not recorded in %s: %s", record.model, self.store, exc)
        # Only now, with the spend in the file, may other processes stop seeing the hold.
        self.budgets.forget(ticket.reservation)
        if record is not None:
            self.rate_limits.settle(
                ticket.model, ticket.tokens, record.input_tokens + record.output_tokens
            )
        b = self._breakers.get(ticket.model)
        if b is not None:
            b.record_success()
        took = latency_s if latency_s is not None else self._clock() - ticket.started
        self.counters.record_latency(ticket.model, took)

    def failed(self, ticket: Ticket, exc: ProviderError | None = None) -> None:
        """The try failed (or was abandoned when `exc` is None): nothing was spent."""
        if ticket.done:
            return
        ticket.done = True
        self._end(ticket)
        self.budgets.release(ticket.reservation)
        if exc is None:
            self._unprobe(ticket.breaker)
            return
        if isinstance(exc, AuthError):
            provider = exc.provider or self._provider_of.get(ticket.model)
            if provider:
                status = f" ({exc.status})" if exc.status else ""
                self.disable_provider(provider, f"authentication failed{status}: {exc}")
        if counts_against_breaker(exc):
            self.breaker(ticket.model).record_failure()
        else:
            self._unprobe(ticket.breaker)

    def _end(self, ticket: Ticket) -> None:
        self.counters.leave(ticket.model)

    def record_usage(self, record: UsageRecord) -> None:
        """Count spend that went through no ticket."""
        self.budgets.add(record.model, record.rule, record.cost_usd)
        self.store.record(record)

    def hold(self, model: str, seconds: float, why: str = "rate limited by the provider") -> None:
        """Keep `model` out of routing for `seconds`: a server's Retry-After applies to
        every request, not only to the one that was told."""
        now = self._clock()
        until = now + seconds
        at = time.strftime("%H:%M:%S", time.localtime(self._wall() + seconds))
        text = f"{why}: retry after {at}"
        with self._lock:
            held = {m: h for m, h in self._held.items() if h[0] > now}
            if held.get(model, (0.0, ""))[0] < until:
                held[model] = (until, text)
            self._held = held

    def mark_down(self, model: str, why: str) -> None:
        """Open `model`'s circuit at once: its endpoint cannot be reached."""
        self.breaker(model).trip(why)

    def disable_provider(self, name: str, reason: str) -> None:
        """Take a provider out of routing until its settings change (e.g. a new key)."""
        with self._lock:
            self._disabled = {**self._disabled, name: reason}

    def enable_provider(self, name: str) -> None:
        with self._lock:
            self._disabled = {k: v for k, v in self._disabled.items() if k != name}

    # -- config reloads -------------------------------------------------------------

    def update_config(self, config: Config) -> None:
        """Follow a reload; models, rules and providers that remain keep their state.

        Opening another usage file and seeding new budgets read SQLite; that happens
        before `_lock` is taken, since every request's admit and end take it too.
        """
        with self._update_lock:
            new_path = usage_path(config)
            store = None
            if self._owns_store and new_path != self._owned_path:
                try:
                    store = self._backend.usage_store(new_path)
                except (OSError, sqlite3.Error, UsageStoreError) as exc:
                    # A reload must not fail on the usage file: keep counting in the old one.
                    log.error("cannot open usage_db %s, keeping %s: %s", new_path, self.store, exc)
            if store is not None:
                # Another file means other totals.
                budgets = self._backend.budgets(config.budgets, store, self._wall)
            else:
                budgets = self.budgets
                budgets.update_budgets(config.budgets)
            with self._lock:
                old_ids = self._provider_ids
                keep: dict[str, CircuitBreaker] = {}
                for name, b in self._breakers.items():
                    m = config.models.get(name)
                    if m is not None:
                        if m.breaker != b.policy:
                            b.update_policy(m.breaker)
                        keep[name] = b
                self._breakers = keep
                self.counters.forget(config.models)
                # A provider disabled by an auth error stays so until its settings change.
                # One no longer in the config (its failure came back after a reload took
                # it out) has no settings to compare: a config that adds it again enables it.
                self._disabled = {
                    name: why
                    for name, why in self._disabled.items()
                    if name in config.providers
                    and config.providers[name].identity() == old_ids.get(name)
                }
                if store is not None:
                    # The old store stays open for tries in flight; it closes with this state.
                    self._old_stores.append(self.store)
                    self.store = store
                    self._owned_path = new_path
                self.budgets = budgets
                self.rate_limits.update(limits_of(config.models.values()))
                self._apply(config)
            self._fleet_breakers(config)
            if config.settings.state != self._config_state:
                log.warning(
                    "settings.state changed to %s; it takes effect when the router restarts",
                    config.settings.state.display(),
                )

    # -- views ------------------------------------------------------------------------

    def breaker_state(self, model: str) -> BreakerState:
        b = self._breakers.get(model)
        return _CLOSED if b is None else b.state()

    def status(self) -> LiveStatus:
        """Everything a person may want to see: for `router.status()` and the CLI."""
        config = self.config
        now = self._wall()
        levels = self.rate_limits.levels()
        waits = self.rate_limits.waits()
        models: dict[str, ModelState] = {}
        for name, m in config.models.items():
            lat = self.counters.latency(name)
            held = self._held.get(name)
            models[name] = ModelState(
                provider=m.provider,
                held=held[1] if held is not None and held[0] > self._clock() else None,
                breaker=self.breaker_state(name),
                in_flight=self.counters.in_flight(name),
                latency_ms=None if lat is None else round(lat * 1000, 1),
                rate_limit=levels.get(name),
                free=self.spend.is_free(name),
                rate_limit_waits=waits.get(name, (0, 0.0)),
            )
        providers = {
            name: ProviderState(
                enabled=p.enabled and name not in self._disabled,
                disabled_reason=self._disabled.get(name) or p.disabled_reason,
            )
            for name, p in config.providers.items()
        }
        # After close() the store is gone; status() still answers, without spend.
        spend = None
        if not self._closed:
            spend = SpendTotals(
                today_usd=round(self.store.spent("global", None, "day", now), 6),
                month_usd=round(self.store.spent("global", None, "month", now), 6),
            )
        return LiveStatus(
            models=models,
            providers=providers,
            budgets=self.budgets.status(),
            spend=spend,
            usage_db=str(self._owned_path)
            if self._owns_store and not self._backend.shared
            else repr(self.store),
            shared_state=self._backend.status(),
        )

    def close(self) -> None:
        self._closed = True
        self._backend.close()  # sends the writes still queued for Redis first
        if self._owns_store:
            for s in [*self._old_stores, self.store]:
                s.close()
            self._old_stores.clear()


__all__ = ["LiveState", "Ticket", "counts_against_breaker", "usage_path"]

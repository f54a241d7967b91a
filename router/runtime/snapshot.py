"""An immutable view of one config: compiled rules plus provider instances.

A request takes the current Snapshot once and keeps it to the end, so a reload
never shows it half a config. A reload builds a new Snapshot beside the old one
and carries over providers whose settings did not change; the old one closes
what it alone owned once its last request is done.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from router.config.model import Config, RoutingTest
from router.engine.decide import decide
from router.engine.requests import build_request
from router.engine.routing_state import NullState, RoutingState
from router.engine.ruleset import RuleSet
from router.errors import ConfigError, ConfigIssue, RouterError, unexpected
from router.providers import Provider, create_provider
from router.types import Chunk, Decision

log = logging.getLogger("router.reload")


@dataclass(frozen=True, slots=True)
class TestOutcome:
    test: RoutingTest
    ok: bool
    skipped: bool
    message: str
    decision: Decision | None


class _Held:
    """Releases its snapshot exactly once: at the stream's end, on close, or when dropped.

    `decision` is the routing decision the stream started on (a fallback may still
    move it to another model; the last chunk's `result` says which served).
    """

    def __init__(self, snap: Snapshot, decision: Decision | None = None) -> None:
        self._snap: Snapshot | None = snap
        self.decision = decision

    def _release(self) -> None:
        snap, self._snap = self._snap, None
        if snap is not None:
            snap.exit()

    def __del__(self) -> None:
        self._release()


class HeldStream(_Held):
    """A stream of chunks that holds the snapshot it was decided on."""

    def __init__(
        self, snap: Snapshot, it: Iterator[Chunk], decision: Decision | None = None
    ) -> None:
        super().__init__(snap, decision)
        self._it = it

    def __iter__(self) -> HeldStream:
        return self

    def __next__(self) -> Chunk:
        try:
            return next(self._it)
        except (StopIteration, RouterError, KeyboardInterrupt, SystemExit, GeneratorExit):
            self._release()
            raise
        except Exception as exc:
            self._release()
            raise unexpected(exc, "stream") from exc
        except BaseException:
            self._release()
            raise

    def close(self) -> None:
        close = getattr(self._it, "close", None)
        try:
            if close is not None:
                close()
        finally:
            self._release()


class HeldAsyncStream(_Held):
    """The async twin of `HeldStream`."""

    def __init__(
        self, snap: Snapshot, it: AsyncIterator[Chunk], decision: Decision | None = None
    ) -> None:
        super().__init__(snap, decision)
        self._it = it

    def __aiter__(self) -> HeldAsyncStream:
        return self

    async def __anext__(self) -> Chunk:
        try:
            return await self._it.__anext__()
        except (StopAsyncIteration, RouterError, KeyboardInterrupt, SystemExit, GeneratorExit):
            self._release()
            raise
        except Exception as exc:
            self._release()
            raise unexpected(exc, "stream") from exc
        except BaseException:
            self._release()
            raise

    async def aclose(self) -> None:
        aclose = getattr(self._it, "aclose", None)
        try:
            if aclose is not None:
                await aclose()
        finally:
            self._release()


class Snapshot:
    def __init__(self, config: Config, ruleset: RuleSet, version: int) -> None:
        self.config = config
        self.ruleset = ruleset
        self.version = version
        self.loaded_at = time.time()
        self._providers: dict[str, Provider] = {}
        self._lock = threading.Lock()  # users, retirement and the provider dict
        self._create_lock = threading.Lock()  # one provider created at a time
        self._users = 0
        self._retired = False
        self._handed_on: set[int] = set()  # ids of providers a newer snapshot took over

    @classmethod
    def build(cls, config: Config, version: int, previous: Snapshot | None = None) -> Snapshot:
        """Compile `config` (`RuleSet.build`: ConfigError at the line of a bad rule)."""
        from router.providers.ad_hoc import describe

        rules = RuleSet.build(config)
        rules.describe = describe  # what `model="<provider>/<id>"` calls: the adapters know
        snap = cls(config, rules, version)
        if previous is not None:
            snap.carry_over(previous)
        return snap

    def carry_over(self, previous: Snapshot) -> None:
        """Take over `previous`'s providers whose settings did not change; `previous`
        will no longer close them. Only for a snapshot that is about to serve: one that
        is thrown away (a failed routing test, nothing changed) would take them along."""
        with previous._lock:
            for name, inst in previous._providers.items():
                new = self.config.providers.get(name)
                if new is not None and new.identity() == inst.config.identity():
                    self._providers[name] = inst
                    previous._handed_on.add(id(inst))

    def provider(self, name: str) -> Provider:
        """The provider instance, created on first use (adapters import lazily)."""
        inst = self._providers.get(name)
        if inst is not None:
            return inst
        # Not under `_lock`: creating one may import litellm (seconds), and every
        # request enters and exits this snapshot through `_lock`.
        with self._create_lock:
            inst = self._providers.get(name)
            if inst is None:
                inst = create_provider(self.config.providers[name])
                with self._lock:
                    self._providers[name] = inst
            return inst

    def loaded_providers(self) -> dict[str, Provider]:
        return dict(self._providers)

    # -- lifetime ---------------------------------------------------------------
    def enter(self) -> None:
        with self._lock:
            self._users += 1

    def exit(self) -> None:
        with self._lock:
            self._users -= 1
            done = self._retired and self._users == 0
        if done:
            self._close_owned()

    def retire(self) -> None:
        """No new requests will take this snapshot; close what only it owns when idle."""
        with self._lock:
            self._retired = True
            done = self._users == 0
        if done:
            self._close_owned()

    def _close_owned(self) -> None:
        with self._lock:
            owned = [p for p in self._providers.values() if id(p) not in self._handed_on]
            self._providers.clear()
        for p in owned:
            try:
                p.close()
            except Exception:  # closing must never break a reload
                log.warning("closing provider %s failed", p.name, exc_info=True)

    # -- the config's own routing tests ----------------------------------------
    def run_tests(self, state: RoutingState | None = None) -> list[TestOutcome]:
        state = state or NullState()
        outcomes = []
        for t in self.config.tests:
            outcomes.append(self._run_test(t, state))
        return outcomes

    def _run_test(self, t: RoutingTest, state: RoutingState) -> TestOutcome:
        try:
            req = build_request(t.prompt, use_case=t.use_case, tags=t.tags, metadata=t.metadata)
        except RouterError as exc:
            return TestOutcome(t, False, False, str(exc), None)
        decision, _ = decide(self.ruleset, req, state, version=self.version)
        want_model = t.expect.get("model")
        if want_model and want_model in self.config.models:
            provider = self.config.providers[self.config.models[want_model].provider]
            if not provider.enabled:
                # Expectations on a provider this environment cannot reach are skipped,
                # so one config validates with or without keys.
                why = f"skipped: {want_model} is unavailable ({provider.disabled_reason})"
                return TestOutcome(t, True, True, why, decision)
        got = {"model": decision.model, "rule": decision.rule, "provider": decision.provider}
        wrong = [f"{k} {got[k]!r} (expected {v!r})" for k, v in t.expect.items() if got[k] != v]
        if wrong:
            return TestOutcome(t, False, False, "routed to " + ", ".join(wrong), decision)
        return TestOutcome(t, True, False, "ok", decision)

    def check_tests(self) -> None:
        """Raise ConfigError listing every failing routing test with its line."""
        issues = [
            ConfigIssue(
                f"routing test failed: {o.test.prompt!r}: {o.message}",
                o.test.where.file,
                o.test.where.line,
                None,
                o.test.where.pointer,
            )
            for o in self.run_tests()
            if not o.ok
        ]
        if issues:
            raise ConfigError(issues)

"""The provider manager's side of `Router`: models, health, compare, batch, embeddings.

A mixin so that `router.py` stays about routing and reloading; every method here
holds the current snapshot for as long as it uses its providers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from router.errors import RequestError

if TYPE_CHECKING:
    from router.config.loader import Overlay
    from router.config.model import Config
    from router.providers.ollama_admin import ProgressFn, PullProgress
    from router.runtime.compare import Comparison
    from router.runtime.health import ProviderHealth
    from router.runtime.reload.changes import ReloadEvent
    from router.runtime.snapshot import Snapshot
    from router.runtime.state.live import LiveState
    from router.types import EmbeddingResult, ModelInfo


_NOUNS = {"providers": "provider", "models": "model"}


class ProviderManager:
    _live: LiveState
    _overlay: Overlay
    _last_health: dict[str, dict[str, Any]]  # provider -> the last health() row

    def _acquire(self) -> Snapshot:
        raise NotImplementedError

    def _apply_overlay(self, overlay: Overlay) -> ReloadEvent:
        raise NotImplementedError

    @property
    def config(self) -> Config:
        raise NotImplementedError

    # -- providers and models at run time ----------------------------------------------

    def add_provider(self, name: str, settings: Mapping[str, Any]) -> ReloadEvent:
        """Add (or, if added at run time, replace) a provider: `settings` as in the YAML.

        Validated like a file reload (schema, semantics, routing tests) and swapped in
        atomically; raises ConfigError, changing nothing, when the result is invalid.
        """
        return self._change("providers", name, settings)

    def remove_provider(self, name: str) -> ReloadEvent:
        """Remove a provider (its models must go first: a model may not name a missing one)."""
        return self._change("providers", name, None)

    def add_model(self, name: str, settings: Mapping[str, Any]) -> ReloadEvent:
        """Add (or replace one added at run time) a model: `provider`, `model`, ... as in YAML.

        A rule routes to it once a rule names it; `compare()` and `embed(model=)` can
        use it at once.
        """
        return self._change("models", name, settings)

    def remove_model(self, name: str) -> ReloadEvent:
        """Remove a model; refused (ConfigError) while a rule still targets it."""
        return self._change("models", name, None)

    def count_tokens(
        self, prompt: str | None = None, *, model: str, messages: Sequence[Any] | None = None
    ) -> int:
        """Input tokens as `model` counts them: its own tokenizer or counting endpoint
        where it has one (a local GGUF, Anthropic), else the router's estimate."""
        from router.engine.requests import build_request
        from router.runtime.exact_tokens import exact_count

        request = build_request(prompt, messages=messages)
        snap = self._acquire()
        try:
            if model not in snap.config.models:
                raise RequestError(f"unknown model {model!r}")
            exact = exact_count(snap, request, snap.config.models[model])
        finally:
            snap.exit()
        return request.tokens if exact is None else exact

    # -- Ollama's model store ----------------------------------------------------------

    def pull(
        self,
        model: str,
        *,
        provider: str | None = None,
        progress: ProgressFn | None = None,
    ) -> PullProgress:
        """Pull `model` (Ollama's name, or a config model served by Ollama) into an Ollama
        provider's store; `progress` receives each step of Ollama's progress stream."""
        from router.providers.ollama_admin import pull

        name, mid, base = self._ollama_target(model, provider)
        return pull(name, base, mid, progress)

    def rm(self, model: str, *, provider: str | None = None) -> None:
        """Delete `model` from an Ollama provider's store (`router rm`)."""
        from router.providers.ollama_admin import delete

        name, mid, base = self._ollama_target(model, provider)
        delete(name, base, mid)

    def _ollama_target(self, model: str, provider: str | None) -> tuple[str, str, str]:
        from router.providers.listing import DEFAULT_BASES, api_kind, listed_id

        config = self.config
        declared = config.models.get(model)
        if declared is not None and provider is None:
            provider = declared.provider
        ollamas = {}
        for name, p in config.providers.items():
            ids = [m.model for m in config.models.values() if m.provider == name]
            kind = api_kind(p.api_base, p.settings.get("api"), ids) if p.type == "litellm" else ""
            if kind == "ollama" or (kind is None and p.api_base):
                ollamas[name] = p.api_base or DEFAULT_BASES["ollama"]
        if provider is not None:
            if provider not in ollamas:
                known = ", ".join(ollamas) or "none"
                raise RequestError(f"provider {provider!r} is not an Ollama provider ({known} are)")
            chosen = provider
        elif len(ollamas) == 1:
            (chosen,) = ollamas
        else:
            which = ", ".join(ollamas) if ollamas else "none"
            raise RequestError(
                f"name the Ollama provider with provider= (Ollama providers here: {which})"
            )
        p = config.providers[chosen]
        if not p.enabled:
            raise RequestError(f"provider {chosen} is disabled: {p.disabled_reason}")
        mid = declared.model if declared is not None else model
        mid = listed_id("ollama", mid)  # ollama/llama3 and ollama_chat/llama3 -> llama3
        return chosen, mid, ollamas[chosen]

    def runtime_changes(self) -> dict[str, Any]:
        """What `add_*`/`remove_*` changed: laid over the files again on every reload."""
        o = self._overlay
        return {
            "added": {k: sorted(v) for k, v in o.added.items() if v},
            "removed": {k: sorted(v) for k, v in o.removed.items() if v},
        }

    def _change(self, section: str, name: str, settings: Mapping[str, Any] | None) -> ReloadEvent:
        from router.config.loader import Overlay

        added = {k: dict(v) for k, v in self._overlay.added.items()}
        removed = {k: set(v) for k, v in self._overlay.removed.items()}
        mine = added.setdefault(section, {})
        gone = removed.setdefault(section, set())
        if settings is not None:
            if not isinstance(settings, Mapping):
                raise RequestError(f"{_NOUNS[section]} {name!r}: settings must be a mapping")
            mine[name] = dict(settings)
        elif name in mine:
            del mine[name]  # undo a runtime addition
        elif name in getattr(self.config, section):
            gone.add(name)
        else:
            raise RequestError(f"no {_NOUNS[section]} {name!r} to remove")
        frozen = {k: frozenset(v) for k, v in removed.items()}
        return self._apply_overlay(Overlay(added, frozen))

    def route(self, prompt: str | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError

    def models(self, discover: bool = False) -> list[ModelInfo]:
        """Every model of the config; with `discover=True` also what each enabled
        provider lists (a failed listing is a row that says why)."""
        from router.runtime.discovery import model_rows

        snap = self._acquire()  # providers created here belong to a snapshot in use
        try:
            return model_rows(snap, discover)
        finally:
            snap.exit()

    def compare(
        self, prompt: str | None = None, *, models: Sequence[str], **kwargs: Any
    ) -> list[Comparison]:
        """The same request to each of `models` in parallel: answer, time to first token,
        total time, tokens and cost per model; a failure is that model's row."""
        from router.engine.requests import build_request
        from router.runtime.compare import compare

        request = build_request(prompt, **kwargs)
        snap = self._acquire()
        try:
            return compare(snap, self._live, request, models)
        finally:
            snap.exit()

    def batch(
        self,
        inputs: str | os.PathLike[str] | Iterable[Any],
        *,
        output: str | os.PathLike[str] | None = None,
        concurrency: int = 4,
        progress: IO[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Route many requests, at most `concurrency` at once; a record per input line.

        `inputs`: a JSONL file, or prompts / request objects (see `router.runtime.batch`).
        With `output`, records are written there (atomically, resumable: a rerun skips
        lines already answered). `progress`: a stream for a progress bar with rate and ETA.
        """
        from router.runtime.batch import BatchOutput, read_lines, run_batch

        return run_batch(
            self.route,
            read_lines(inputs),
            BatchOutput(output),
            concurrency=concurrency,
            progress_stream=progress,
        )

    def embed(
        self,
        texts: str | Sequence[str],
        *,
        use_case: str | None = None,
        model: str | None = None,
        **params: Any,
    ) -> EmbeddingResult:
        """One vector per text, from a model with `capabilities: [embeddings]` chosen by
        the rules (or `model=`); `tags=`/`metadata=` feed matching, other keywords
        (`dimensions=`) go to the provider. Usage and cost are recorded."""
        from router.runtime.embed import embed

        hints: dict[str, Any] = {k: params.pop(k) for k in ("tags", "metadata") if k in params}
        snap = self._acquire()
        try:
            return embed(
                snap, self._live, texts, use_case=use_case, model=model, params=params, hints=hints
            )
        finally:
            snap.exit()

    async def aembed(
        self,
        texts: str | Sequence[str],
        *,
        use_case: str | None = None,
        model: str | None = None,
        **params: Any,
    ) -> EmbeddingResult:
        """Async `embed()`, on the adapters' async calls."""
        from router.runtime.embed import aembed

        hints: dict[str, Any] = {k: params.pop(k) for k in ("tags", "metadata") if k in params}
        snap = self._acquire()
        try:
            return await aembed(
                snap, self._live, texts, use_case=use_case, model=model, params=params, hints=hints
            )
        finally:
            snap.exit()

    def health(self, timeout: float = 10.0) -> list[ProviderHealth]:
        """Probe every provider for real: status, latency, the error in words, why disabled."""
        from router.runtime import health

        disabled = {
            n: p.disabled_reason
            for n, p in self._live.status().providers.items()
            if not p.enabled and p.disabled_reason
        }
        snap = self._acquire()
        try:
            rows = health.check(snap, disabled, timeout)
        finally:
            snap.exit()
        now = time.time()
        # status() shows the last probe: "enabled" alone says nothing of a down server.
        self._last_health = {h.name: {**h.as_dict(), "checked_at": now} for h in rows}
        return rows

    def provider_details(self) -> dict[str, dict[str, Any]]:
        """What each provider created so far says of itself (`info()`: never a key; a
        llama_cpp provider lists the models loaded in the pool). Providers no request has
        used yet are absent: asking must not create them (and import their library)."""
        snap = self._acquire()
        try:
            return {name: p.info() for name, p in snap.loaded_providers().items()}
        finally:
            snap.exit()

"""The provider manager's side of `Router`: models, health, compare, batch, embeddings.

A mixin so that `router.py` stays about routing and reloading; every method here
holds the current snapshot for as long as it uses its providers.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.runtime.compare import Comparison
    from router.runtime.health import ProviderHealth
    from router.runtime.snapshot import Snapshot
    from router.runtime.state.live import LiveState
    from router.types import EmbeddingResult


class ProviderManager:
    _live: LiveState

    def _acquire(self) -> Snapshot:
        raise NotImplementedError

    def route(self, prompt: str | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError

    def models(self, discover: bool = False) -> list[dict[str, Any]]:
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
        from router.runtime.compare import compare
        from router.runtime.requests import build_request

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
        """Async `embed()`: runs in a worker thread, never on the event loop."""
        return await asyncio.to_thread(
            lambda: self.embed(texts, use_case=use_case, model=model, **params)
        )

    def health(self, timeout: float = 10.0) -> list[ProviderHealth]:
        """Probe every provider for real: status, latency, the error in words, why disabled."""
        from router.runtime import health

        disabled = {
            n: p["disabled_reason"]
            for n, p in self._live.status()["providers"].items()
            if not p["enabled"] and p["disabled_reason"]
        }
        snap = self._acquire()
        try:
            return health.check(snap, disabled, timeout)
        finally:
            snap.exit()

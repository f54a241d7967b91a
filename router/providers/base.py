"""The one small interface every backend implements."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from router.config.model import ModelConfig, ProviderConfig
from router.errors import BadRequest
from router.secrets import guard_client_logs, is_sensitive_name, mask_url, url_secrets
from router.types import Message, Usage


def config_secrets(config: ProviderConfig) -> list[str]:
    """Every credential a provider's config holds: its key, what its api_base carries
    (userinfo, `?key=`), sensitive header values. Error messages must show none."""
    found = [config.api_key.reveal()] if config.api_key else []
    found += url_secrets(config.api_base)
    headers = config.settings.get("headers")
    if isinstance(headers, Mapping):
        found += [str(v) for k, v in headers.items() if v and is_sensitive_name(str(k))]
    return found


@dataclass(frozen=True, slots=True)
class Call:
    """What an adapter is asked to run: one model, rendered messages, normalised params."""

    model: ModelConfig
    messages: tuple[Message, ...]
    params: Mapping[str, Any] = field(default_factory=dict)  # temperature, max_tokens, ...
    tools: tuple[Mapping[str, Any], ...] | None = None
    response_format: Mapping[str, Any] | None = None
    timeout: float | None = None  # seconds left for this attempt


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    usage: Usage
    finish_reason: str | None = None
    tool_calls: tuple[Mapping[str, Any], ...] | None = None
    cost_usd: float | None = None  # set when the adapter knows a price the YAML does not


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of a stream; the last one has `usage` (and a finish reason), and the
    tool calls the stream assembled, in `Completion.tool_calls`'s shape."""

    text: str
    usage: Usage | None = None
    finish_reason: str | None = None
    cost_usd: float | None = None
    tool_calls: tuple[Mapping[str, Any], ...] | None = None


@dataclass(frozen=True, slots=True)
class Embeddings:
    """Vectors for a list of inputs, in the inputs' order."""

    vectors: tuple[tuple[float, ...], ...]
    usage: Usage  # input tokens only
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Listed:
    """One model a backend offers, with what the backend says about it."""

    id: str
    context: int | None = None
    cost_input: float | None = None  # USD per 1M tokens
    cost_output: float | None = None


PROBE_PROMPT: tuple[Message, ...] = ({"role": "user", "content": "ping"},)


class Provider(ABC):
    """A backend. Adapters translate library errors into `router.errors` ones."""

    type: ClassVar[str]
    # Capabilities every model of this provider has, whatever the YAML says.
    capabilities: ClassVar[frozenset[str]] = frozenset()
    # Whether `list_models` asks the backend (a probe then needs no paid request).
    lists_models: ClassVar[bool] = False
    # Its models cost nothing per call (they run on the caller's own hardware): budgets
    # never hold them back, so they are what `on_budget: fallback` falls back to.
    free: ClassVar[bool] = False
    # Whether a caller may name a model the config does not list (`model="<provider>/<id>"`):
    # yes for remote APIs; no where a model id is a file on this machine.
    ad_hoc_models: ClassVar[bool] = True

    @classmethod
    def serves_free(cls, model: ModelConfig) -> bool:
        """Whether `model` costs nothing per call when the YAML gives it no price."""
        return cls.free

    @classmethod
    def ad_hoc_id(cls, provider: ProviderConfig, model_id: str) -> str:
        """The `model:` a YAML entry would give for `model="<provider>/<model_id>"`."""
        return model_id

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        # The HTTP clients below an adapter log URLs and headers: mask them, and this
        # provider's credentials wherever they would show in those logs.
        guard_client_logs(config_secrets(config))

    @property
    def name(self) -> str:
        return self.config.name

    @abstractmethod
    def complete(self, call: Call) -> Completion: ...

    def stream(self, call: Call) -> Iterator[Delta]:
        """Default: one piece holding the whole completion."""
        done = self.complete(call)
        yield Delta(done.text, done.usage, done.finish_reason, done.cost_usd, done.tool_calls)

    async def acomplete(self, call: Call) -> Completion:
        """Default: run the sync call in a worker thread, never on the event loop."""
        return await asyncio.to_thread(self.complete, call)

    async def astream(self, call: Call) -> AsyncIterator[Delta]:
        """Default: drive the sync stream from a worker thread."""
        it = self.stream(call)
        sentinel = object()
        while True:
            item = await asyncio.to_thread(next, it, sentinel)
            if item is sentinel:
                return
            assert isinstance(item, Delta)
            yield item

    def list_models(self) -> list[str]:
        """Model ids the backend offers; raises ProviderError when it cannot say."""
        return [m.id for m in self.discover()]

    def discover(self, model_ids: Sequence[str] = ()) -> list[Listed]:
        """What the backend offers, with context and price where it says.

        `model_ids`: the ids the config uses with this provider (a hint to which API
        to ask when no `api_base` says it). Raises ProviderError when listing fails.
        """
        if type(self).list_models is not Provider.list_models:  # an adapter that lists ids
            return [Listed(i) for i in self.list_models()]
        return []

    def probe(self, models: Sequence[ModelConfig], timeout: float = 5.0) -> str:
        """A real check that the backend answers; what was done, or a ProviderError.

        A listing where the backend offers one, else a 1-token request to the first model.
        """
        if self.lists_models:
            found = self.discover([m.model for m in models])
            return f"listed {len(found)} models"
        if not models:
            return "nothing to probe: no model uses this provider"
        model = models[0]
        self.complete(Call(model, PROBE_PROMPT, {"max_tokens": 1}, timeout=timeout))
        return f"1-token request to {model.name}"

    def count_tokens(self, model: ModelConfig, messages: Sequence[Message]) -> int | None:
        """Input tokens of `messages` as `model` counts them; None where this backend
        offers no exact count (the caller falls back to the estimate)."""
        return None

    def health_notes(self) -> list[str]:
        """Things a person should know about this backend (e.g. no GPU offload)."""
        return []

    def embed(self, model: ModelConfig, inputs: Sequence[str], **params: Any) -> Embeddings:
        """Vectors for `inputs`, in order; adapters that serve embeddings override this."""
        raise BadRequest(
            f"provider type {self.type!r} does not serve embeddings",
            provider=self.name,
            model=model.name,
        )

    async def aembed(self, model: ModelConfig, inputs: Sequence[str], **params: Any) -> Embeddings:
        """Default: the sync call in a worker thread."""
        return await asyncio.to_thread(self.embed, model, inputs, **params)

    def info(self) -> dict[str, Any]:
        """What the provider is, never its key."""
        return {
            "name": self.config.name,
            "type": self.type,
            "api_base": mask_url(self.config.api_base) if self.config.api_base else None,
            "enabled": self.config.enabled,
        }

    def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release clients and loaded models."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.config.name!r}>"

"""`type: openai`: any OpenAI-compatible chat-completions API, spoken natively.

OpenAI, OpenRouter, Groq, Together, DeepSeek, Mistral, Fireworks, vLLM, llama.cpp's
server, LM Studio, Ollama's /v1: one protocol, so no translation library is needed.
Requests go through `router.providers.http11` (why that client, and not httpx or
aiohttp: see its docstring); the body is the call's messages and params as they are,
so anything the server takes (`n`, `logprobs`, `seed`, vendor extras) passes through.

Errors are mapped as the litellm adapter maps them (`openai_errors`); prices and
context windows come from litellm's shipped price map, read without importing litellm
(`prices`). Nothing here imports litellm, httpx or the OpenAI SDK.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, ClassVar

from router import errors
from router.config.model import ModelConfig, ProviderConfig
from router.errors import ConfigError
from router.providers.base import Call, Completion, Delta, Embeddings, Provider
from router.providers.http11 import Endpoint, Response, SSEParser, proxy_for
from router.providers.http11_async import AsyncPool
from router.providers.http11_sync import SyncPool
from router.providers.listing import http_error
from router.providers.litellm_support import (
    StreamState,
    credentials,
    estimate_usage,
    tool_calls_of,
    usage_of,
)
from router.providers.openai_errors import (
    ErrorMapper,
    error_from_event,
    transport_error,
)
from router.providers.openai_settings import OpenAISettings
from router.providers.openai_wire import chat_body, embeddings_body, json_object, vectors_of
from router.providers.prices import ModelFacts, shared_price_map
from router.secrets import redact
from router.types import Usage

_ACCEPT_JSON = b"Accept: application/json\r\n"
_ACCEPT_SSE = b"Accept: text/event-stream\r\n"


class OpenAIProvider(Provider):
    """A provider whose models are the API's own model ids (`gpt-4o-mini`, ...)."""

    type: ClassVar[str] = "openai"
    lists_models: ClassVar[bool] = True  # GET /models: a health probe spends no tokens

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self.settings = OpenAISettings.from_config(config)
        s = self.settings
        self.endpoint = Endpoint.parse(s.api_base)
        try:
            self.proxy = proxy_for(self.endpoint, s.proxy)
        except ValueError as exc:  # a bad HTTPS_PROXY in the environment
            raise ConfigError(
                f"provider {config.name!r}: proxy from the environment: {exc}"
            ) from None
        self._sync = SyncPool(
            self.endpoint,
            verify=s.verify,
            max_idle=s.max_connections,
            keepalive_expiry=s.keepalive_expiry,
            proxy=self.proxy,
        )
        self._async = AsyncPool(
            self.endpoint,
            verify=s.verify,
            max_connections=s.max_connections,
            keepalive_expiry=s.keepalive_expiry,
            proxy=self.proxy,
        )
        self._head = s.head_bytes(self.endpoint)
        self._model_heads: dict[tuple[tuple[str, str], ...], bytes] = {}
        self._errors = ErrorMapper(
            provider=config.name,
            endpoint=self.endpoint,
            secrets=[
                s.api_key or "",
                self.proxy.password if self.proxy else "",
                *credentials(s.headers),
            ],
        )
        self._prices = shared_price_map()

    # -- requests ----------------------------------------------------------------------------

    def _request_head(self, model: ModelConfig, stream: bool) -> bytes:
        head = self._head
        extra = model.settings.get("headers")
        if extra:
            key = tuple((str(k), str(v)) for k, v in dict(extra).items())
            head = self._model_heads.get(key) or b""
            if not head:
                head = self._model_heads[key] = self.settings.head_bytes(self.endpoint, extra)
        return head + (_ACCEPT_SSE if stream else _ACCEPT_JSON)

    def _timeout(self, call: Call) -> float | None:
        return call.timeout if call.timeout is not None else self.settings.timeout

    def _target(self, path: str) -> str:
        return self.endpoint.prefix + path

    # -- the interface -----------------------------------------------------------------------

    # Each failure is raised after its `except` block has ended, so it carries no
    # transport exception as cause or context.

    def complete(self, call: Call) -> Completion:
        target = self._target("/chat/completions")
        try:
            resp = self._sync.request(
                "POST",
                target,
                self._request_head(call.model, False),
                chat_body(call, False),
                self._timeout(call),
            )
        except Exception as exc:
            failure = transport_error(exc, self._errors, call.model, target)
        else:
            return self._completion(call, resp, target)
        raise failure from None

    async def acomplete(self, call: Call) -> Completion:
        target = self._target("/chat/completions")
        try:
            resp = await self._async.request(
                "POST",
                target,
                self._request_head(call.model, False),
                chat_body(call, False),
                self._timeout(call),
            )
        except Exception as exc:
            failure = transport_error(exc, self._errors, call.model, target)
        else:
            return self._completion(call, resp, target)
        raise failure from None

    def stream(self, call: Call) -> Iterator[Delta]:
        target = self._target("/chat/completions")
        acc = StreamState()
        failure: errors.ProviderError | None = None
        pieces: Iterator[bytes] | None = None
        try:
            resp, pieces = self._sync.stream(
                "POST",
                target,
                self._request_head(call.model, True),
                chat_body(call, True),
                self._timeout(call),
            )
            if resp.status >= 400:
                failure = self._errors.from_response(resp, call.model, target)
            else:
                parser = SSEParser()
                for piece in pieces:
                    for data in parser.feed(piece):
                        text = self._event(data, acc, call, target)
                        if isinstance(text, str):
                            if text:
                                yield Delta(text)
                        else:
                            failure = text
                            break
                    if failure is not None:
                        break
        except Exception as exc:
            failure = transport_error(exc, self._errors, call.model, target, acc.has_text)
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # abandoned, failed or done: the pool decides what to keep
        if failure is not None:
            raise failure from None
        yield self._last(call, acc)

    async def astream(self, call: Call) -> AsyncIterator[Delta]:
        target = self._target("/chat/completions")
        acc = StreamState()
        failure: errors.ProviderError | None = None
        try:
            async with self._async.stream(
                "POST",
                target,
                self._request_head(call.model, True),
                chat_body(call, True),
                self._timeout(call),
            ) as (resp, pieces):
                if resp.status >= 400:
                    failure = self._errors.from_response(resp, call.model, target)
                else:
                    parser = SSEParser()
                    async for piece in pieces:
                        for data in parser.feed(piece):
                            text = self._event(data, acc, call, target)
                            if isinstance(text, str):
                                if text:
                                    yield Delta(text)
                            else:
                                failure = text
                                break
                        if failure is not None:
                            break
        except Exception as exc:
            failure = transport_error(exc, self._errors, call.model, target, acc.has_text)
        if failure is not None:
            raise failure from None
        yield self._last(call, acc)

    def _event(
        self, data: str, acc: StreamState, call: Call, target: str
    ) -> str | errors.ProviderError:
        """Feed one SSE event: the text it adds, or the error the server reports in it."""
        if data == "[DONE]":
            return ""
        try:
            chunk = json.loads(data)
        except ValueError:
            return ""  # keep-alive noise some servers send
        if not isinstance(chunk, dict):
            return ""
        if chunk.get("error") is not None and not chunk.get("choices"):
            return error_from_event(chunk, self._errors, call.model, target, acc.has_text)
        return acc.feed(chunk)

    # -- results -----------------------------------------------------------------------------

    def _completion(self, call: Call, resp: Response, target: str) -> Completion:
        if resp.status >= 400:
            raise self._errors.from_response(resp, call.model, target) from None
        data = json_object(resp.body)
        choices = data.get("choices") if data is not None else None
        choice = choices[0] if isinstance(choices, list) and choices else None
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict) or not isinstance(choice, dict) or data is None:
            raise self._errors.bad_reply(resp, call.model, target) from None
        text = message.get("content") or ""
        if not isinstance(text, str):  # content parts (some servers)
            text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
        usage = usage_of(data.get("usage")) or estimate_usage(call, text)
        return Completion(
            text=text,
            usage=usage,
            finish_reason=choice.get("finish_reason"),
            tool_calls=tool_calls_of(message.get("tool_calls")),
            cost_usd=self._cost(call.model, usage),
        )

    def _last(self, call: Call, acc: StreamState) -> Delta:
        usage = acc.usage or estimate_usage(call, acc.output_text())
        return Delta("", usage, acc.finish_reason, self._cost(call.model, usage), acc.tool_calls())

    def model_facts(self, model: str) -> ModelFacts | None:
        """litellm's price map entry for one of this API's model ids (None: unknown)."""
        return self._prices.facts(model, self.settings.api_base)

    def context_window(self, model: str) -> int | None:
        facts = self.model_facts(model)
        return facts.max_input_tokens if facts is not None else None

    def _cost(self, model: ModelConfig, usage: Usage) -> float | None:
        """The map's price when the YAML gives none; None when the map does not know one."""
        if model.cost is not None:
            return None
        facts = self.model_facts(model.model)
        return facts.cost(usage.input_tokens, usage.output_tokens) if facts else None

    # -- models and embeddings ---------------------------------------------------------------

    def list_models(self) -> list[str]:
        """The ids `GET /models` lists. A server that cannot be reached or says no is a
        ProviderError with the endpoint, the status and its words, never an empty list."""
        target = self._target("/models")
        where = self._errors.where("GET", target)
        head = self._head + _ACCEPT_JSON
        try:
            resp = self._sync.request("GET", target, head, None, 5.0)
        except OSError as exc:
            failure: errors.ProviderError = errors.Unavailable(
                f"{where}: {type(exc).__name__}: {exc}", provider=self.name
            )
        else:
            if resp.status != 200:
                body = resp.body[:2000].decode("utf-8", "replace")
                raise http_error(
                    self.name,
                    "GET",
                    where.split(" ", 1)[1],
                    resp.status,
                    body,
                    lambda t: redact(t, self._errors.secrets),
                ) from None
            try:
                return [str(item["id"]) for item in json.loads(resp.body)["data"]]
            except (ValueError, TypeError, KeyError) as exc:
                failure = errors.Unavailable(
                    f"{where}: unexpected answer ({type(exc).__name__}: {exc})", provider=self.name
                )
        raise failure from None

    def embed(self, model: ModelConfig, inputs: Sequence[str], **params: Any) -> Embeddings:
        target = self._target("/embeddings")
        body = embeddings_body(model, inputs, params)
        try:
            resp = self._sync.request(
                "POST", target, self._request_head(model, False), body, self.settings.timeout
            )
        except Exception as exc:
            failure = transport_error(exc, self._errors, model, target)
        else:
            return self._embeddings(model, inputs, resp, target)
        raise failure from None

    async def aembed(self, model: ModelConfig, inputs: Sequence[str], **params: Any) -> Embeddings:
        target = self._target("/embeddings")
        body = embeddings_body(model, inputs, params)
        try:
            resp = await self._async.request(
                "POST", target, self._request_head(model, False), body, self.settings.timeout
            )
        except Exception as exc:
            failure = transport_error(exc, self._errors, model, target)
        else:
            return self._embeddings(model, inputs, resp, target)
        raise failure from None

    def _embeddings(
        self, model: ModelConfig, inputs: Sequence[str], resp: Response, target: str
    ) -> Embeddings:
        if resp.status >= 400:
            raise self._errors.from_response(resp, model, target) from None
        data = json_object(resp.body)
        vectors = vectors_of(data)
        if data is None or vectors is None or len(vectors) != len(inputs):
            raise self._errors.bad_reply(resp, model, target) from None
        raw_usage = data.get("usage") or {}
        n_in = int(raw_usage.get("prompt_tokens") or 0) or sum(len(t) // 4 + 1 for t in inputs)
        usage = Usage(n_in, 0)
        return Embeddings(vectors, usage, self._cost(model, usage))

    # -- the rest ----------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        out = super().info()
        out.update(
            {
                "api_base": self.endpoint.url(""),
                "backend": "native HTTP/1.1",
                "timeout": self.settings.timeout,
                "has_key": bool(self.settings.api_key),
                "headers": sorted(self.settings.headers),  # names only: values may be tokens
                "max_connections": self.settings.max_connections,
                "proxy": f"http://{self.proxy.endpoint.host_header}" if self.proxy else None,
            }
        )
        return out

    def close(self) -> None:
        self._sync.close()
        self._async.close()


__all__ = ["OpenAIProvider"]

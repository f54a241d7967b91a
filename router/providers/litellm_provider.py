"""`type: litellm`: any model litellm knows (openai/, anthropic/, openrouter/, ollama/, ...).

The only module of the package that imports litellm. The registry imports it when the
first litellm provider is created, so `import router` stays light.

litellm is set up here for a library living inside someone else's process (the
figures are from `python bench/overhead.py --settings`):

- prices come from the map bundled with litellm, not a fetch from GitHub at import
  (up to 5 s on a machine whose firewall drops packets, warnings on stderr offline, and
  prices that could change under a running process); litellm does not load a `.env`
  file into os.environ behind the config's back;
- litellm's loggers are disabled and its debug banners suppressed: its records can carry
  prompts and request headers (and disabled loggers cost nothing per call);
- each call passes num_retries=0 and max_retries=0 (the router retries), drop_params only
  when there is something to drop, and, for plain OpenAI-SDK chat calls, one OpenAI client
  the provider keeps instead of litellm's per-call client lookup (~0.2 ms a call);
- left alone: turn_off_message_logging (adds work per call: it redacts a copy for
  callbacks, and there are none) and callbacks (none are registered).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, ClassVar

# Before litellm is imported: read the price map shipped in the wheel instead of fetching
# it from GitHub (seconds of delay and warnings on an offline machine), and do not let
# litellm load a .env file into os.environ behind the config's back.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")

import httpx
import litellm
import openai

# litellm imports its proxy's types (about a second) inside the first completion; here
# that is part of creating the adapter (the warm-up, or setup that no deadline counts).
with contextlib.suppress(ImportError):
    import litellm.proxy.openai_files_endpoints.common_utils

from router import errors
from router.config.model import ModelConfig, ProviderConfig
from router.providers.base import (
    Call,
    Completion,
    Delta,
    Embeddings,
    Listed,
    Provider,
    config_secrets,
)
from router.providers.failure_words import (
    connection_failed,
    endpoint_of,
    hint_for,
    provider_words,
    unreachable_cause,
)
from router.providers.listing import Catalog
from router.providers.litellm_support import (
    StreamState,
    credentials,
    embed_kwargs,
    embeddings_of,
    error_message,
    estimate_usage,
    parse_retry_after,
    retry_after,
    status_of,
    tool_calls_of,
    usage_of,
)
from router.secrets import redact
from router.types import Message, Usage

_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")


def _configure_litellm() -> None:
    """Process-wide litellm settings; idempotent."""
    litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on errors
    # litellm's loggers can carry prompts and request headers; nothing of theirs goes out.
    for name in _LITELLM_LOGGERS:
        logger = logging.getLogger(name)
        logger.disabled = True
        logger.propagate = False
        logger.setLevel(logging.CRITICAL + 1)


_configure_litellm()


# Keys the adapter sets itself or that belong to other backends: never taken from params.
_RESERVED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "api_key",
        "api_base",
        "base_url",
        "timeout",
        "extra_headers",
        "headers",
        "num_retries",
        "max_retries",
        "tools",
        "response_format",
        "metadata",
        "callbacks",
        "mock_response",
        "client",
        # llama.cpp / router-only settings
        "n_ctx",
        "n_gpu_layers",
        "n_threads",
        "model_path",
        "use_case",
        "tags",
    }
)


# The key sent to an OpenAI-compatible api_base configured without one.
NO_KEY = "no-key"
_OPENAI_SDK_PROVIDERS = frozenset({"openai", "custom_openai", "text-completion-openai"})

# Params with which litellm may send an OpenAI chat call to the Responses API instead.
_BRIDGE_PARAMS = frozenset({"reasoning_effort", "reasoning_summary", "web_search_options"})


class LiteLLMProvider(Provider):
    """A provider whose models are litellm model ids."""

    type: ClassVar[str] = "litellm"
    lists_models: ClassVar[bool] = True

    @classmethod
    def serves_free(cls, model: ModelConfig) -> bool:
        # litellm's ids for a model served by an Ollama the caller runs.
        return model.model.startswith(("ollama/", "ollama_chat/"))

    @classmethod
    def ad_hoc_id(cls, provider: ProviderConfig, model_id: str) -> str:
        # A provider named as litellm names one (`openrouter`, `ollama`, `anthropic`):
        # litellm routes by that prefix, so `openrouter/google/gemini-flash` keeps it.
        # An id litellm cannot place, on an OpenAI-compatible api_base (vLLM, a proxy,
        # llama-server): sent to that server as its own id, as `openai/<id>`.
        if provider.name in _litellm_prefixes():
            return f"{provider.name}/{model_id}"
        if provider.api_base:
            try:
                litellm.get_llm_provider(model=model_id, api_base=provider.api_base)
            except Exception:  # litellm: "LLM Provider NOT provided"
                return f"openai/{model_id}"
        return model_id

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self._key = config.api_key.reveal() if config.api_key else None
        headers = config.settings.get("headers") or {}
        self._headers = {str(k): str(v) for k, v in dict(headers).items()}
        # What an error message must never show: the key and credential header values.
        self._secrets = config_secrets(config)
        # The server's listing, OpenRouter's prices and Anthropic's token counts.
        self._catalog = Catalog(config, self._key, self._headers, self._secrets, _model_info)
        self._price_known: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._sdk: openai.OpenAI | None = None
        self._sdk_route: dict[str, bool] = {}  # model id -> sent through the OpenAI SDK
        self._keyless: dict[str, bool] = {}  # model id -> needs the placeholder key
        # Settings the schema accepts for `type: litellm`, each sent with every call.
        settings = config.settings
        verify = settings.get("verify", settings.get("ssl_verify"))
        self._extra: dict[str, Any] = {
            k: v
            for k, v in (
                ("api_version", settings.get("api_version")),
                ("organization", settings.get("organization")),
                ("ssl_verify", verify),
            )
            if v is not None
        }

    # -- a reused SDK client -----------------------------------------------------------------

    def _openai_client(self, call: Call) -> openai.OpenAI | None:
        """This provider's own OpenAI SDK client, for calls litellm sends through that SDK.

        litellm looks its cached client up on every call and builds it on httpx; handing it
        one client, built once on the SDK's default transport, saves that per-call work.
        Only for plain chat calls with a configured key: without a key litellm's own lookup
        must run, and calls litellm may bridge to the Responses API (a "responses" model,
        tools or reasoning options) keep litellm's own client handling.
        """
        if call.tools or litellm.route_all_chat_openai_to_responses:
            return None
        if "ssl_verify" in self._extra or "api_version" in self._extra:
            return None  # litellm builds the client these need
        if not _BRIDGE_PARAMS.isdisjoint(call.params):
            return None
        model = call.model.model
        route = self._sdk_route.get(model)
        if route is None:
            route = self._sdk_route[model] = bool(self._key) and self._chat_via_sdk(model)
        if not route:
            return None
        sdk = self._sdk
        if sdk is not None:
            return sdk
        with self._lock:
            if self._sdk is None:
                base = (
                    self.config.api_base
                    or litellm.api_base
                    or os.environ.get("OPENAI_BASE_URL")
                    or os.environ.get("OPENAI_API_BASE")
                    or "https://api.openai.com/v1"
                )
                # litellm passes each call's timeout per request; this is only a ceiling.
                self._sdk = openai.OpenAI(
                    api_key=self._key,
                    organization=self._extra.get("organization"),
                    base_url=base,
                    max_retries=0,
                    timeout=self.config.timeout or 600.0,
                )
            return self._sdk

    def _keyless_openai(self, model: str) -> bool:
        """Whether litellm sends `model` through the OpenAI SDK with no key it could find."""
        known = self._keyless.get(model)
        if known is None:
            try:
                provider = litellm.get_llm_provider(model=model, api_base=self.config.api_base)[1]
            except Exception:
                provider = None
            known = provider in _OPENAI_SDK_PROVIDERS and not os.environ.get("OPENAI_API_KEY")
            self._keyless[model] = known
        return known

    def _chat_via_sdk(self, model: str) -> bool:
        """Whether litellm serves this model id with the OpenAI SDK's chat completions."""
        if model.startswith(("responses/", "openai/responses/")):
            return False
        try:
            provider = litellm.get_llm_provider(model=model, api_base=self.config.api_base)[1]
        except Exception:
            return False
        if provider != "openai":
            return False
        try:
            mode = litellm.get_model_info(model).get("mode")
        except Exception:  # not in the price map: litellm treats it as a chat model
            return True
        return mode in (None, "chat")

    # -- building the call -----------------------------------------------------------------

    def _kwargs(self, call: Call, stream: bool, sync: bool = True) -> dict[str, Any]:
        model = call.model.model
        kw: dict[str, Any] = {
            k: v for k, v in call.params.items() if k not in _RESERVED and v is not None
        }
        has_params = bool(kw) or bool(call.tools) or bool(call.response_format)
        kw["model"] = model
        # litellm may rewrite messages in place (content parts); hand it copies.
        kw["messages"] = [dict(m) for m in call.messages]
        if self._key:
            kw["api_key"] = self._key
        elif self.config.api_base and self._keyless_openai(model):
            # A local OpenAI-compatible server (vLLM, llama-server, LM Studio) needs no key,
            # but the OpenAI SDK refuses to send a request without one.
            kw["api_key"] = NO_KEY
        if self.config.api_base:
            kw["api_base"] = self.config.api_base
        kw.update(self._extra)
        timeout = call.timeout if call.timeout is not None else self.config.timeout
        if timeout is not None:
            kw["timeout"] = timeout
        headers = self._headers
        model_headers = call.model.settings.get("headers")
        if model_headers:
            headers = {**headers, **{str(k): str(v) for k, v in dict(model_headers).items()}}
        if headers:
            kw["extra_headers"] = dict(headers)
        if call.tools:
            kw["tools"] = [dict(t) for t in call.tools]
        if call.response_format:
            kw["response_format"] = dict(call.response_format)
        # No retries inside litellm or the SDK clients it drives: the router retries.
        kw["num_retries"] = 0
        kw["max_retries"] = 0
        if stream:
            kw["stream"] = True
            kw["stream_options"] = {"include_usage": True}
        if stream or has_params:
            # One rule's params go to many models: drop what a provider does not take
            # (only when there is something to drop: the flag costs litellm work).
            kw["drop_params"] = True
        if sync:  # async calls measured no gain from a reused client (aiohttp transport)
            client = self._openai_client(call)
            if client is not None:
                kw["client"] = client
        return kw

    # -- results ---------------------------------------------------------------------------

    def _cost(self, call: Call, usage: Usage, response: Any = None) -> float | None:
        """litellm's price when the YAML gives none; None when litellm does not know one."""
        if call.model.cost is not None:
            return None
        listed = self._catalog.openrouter_price(call.model.model)
        if listed is not None:
            return (usage.input_tokens * listed[0] + usage.output_tokens * listed[1]) / 1e6
        if response is not None:
            hidden = getattr(response, "_hidden_params", None) or {}
            cost = hidden.get("response_cost")
            if isinstance(cost, (int, float)) and not math.isnan(cost):
                return float(cost)
        model = call.model.model
        if self._price_known.get(model) is False:
            return None
        try:
            p_in, p_out = litellm.cost_per_token(
                model=model,
                prompt_tokens=usage.input_tokens,
                completion_tokens=usage.output_tokens,
            )
        except Exception:  # not in the price map
            self._price_known[model] = False
            return None
        self._price_known[model] = True
        return float(p_in) + float(p_out)

    def _completion(self, call: Call, response: Any) -> Completion:
        choice = response.choices[0] if response.choices else None
        message = getattr(choice, "message", None)
        text = (getattr(message, "content", None) or "") if message is not None else ""
        usage = usage_of(getattr(response, "usage", None))
        if usage is None:
            usage = estimate_usage(call, text)
        return Completion(
            text=text,
            usage=usage,
            finish_reason=getattr(choice, "finish_reason", None),
            tool_calls=tool_calls_of(getattr(message, "tool_calls", None)),
            cost_usd=self._cost(call, usage, response),
        )

    # -- the interface ---------------------------------------------------------------------

    # Each failure is raised after its `except` block has ended: the library exception
    # (its request, headers and traceback frames hold the key) is neither the error's
    # cause nor its context, so no traceback or error reporter can reach it.

    def complete(self, call: Call) -> Completion:
        try:
            response = litellm.completion(**self._kwargs(call, stream=False))
        except Exception as exc:
            failure = self._error(exc, call)
        else:
            return self._completion(call, response)
        raise failure from None

    async def acomplete(self, call: Call) -> Completion:
        try:
            response = await litellm.acompletion(**self._kwargs(call, stream=False, sync=False))
        except Exception as exc:
            failure = self._error(exc, call)
        else:
            return self._completion(call, response)
        raise failure from None

    def stream(self, call: Call) -> Iterator[Delta]:
        acc = StreamState()
        failure: errors.ProviderError | None = None
        response: Any = None
        try:
            response = litellm.completion(**self._kwargs(call, stream=True))
            for chunk in response:
                text = acc.feed(chunk)
                if text:
                    yield Delta(text)
            acc.counted_by_litellm(response)
            response = None
        except Exception as exc:
            failure = self._error(exc, call, partial=acc.has_text)
        finally:
            if response is not None:  # abandoned or failed: release the connection
                with contextlib.suppress(Exception):
                    response.close()
        if failure is not None:
            raise failure from None
        yield self._last(call, acc)

    async def astream(self, call: Call) -> AsyncIterator[Delta]:
        acc = StreamState()
        failure: errors.ProviderError | None = None
        response: Any = None
        try:
            response = await litellm.acompletion(**self._kwargs(call, stream=True, sync=False))
            async for chunk in response:
                text = acc.feed(chunk)
                if text:
                    yield Delta(text)
            acc.counted_by_litellm(response)
            response = None
        except Exception as exc:
            failure = self._error(exc, call, partial=acc.has_text)
        finally:
            if response is not None:
                with contextlib.suppress(Exception):
                    await response.aclose()
        if failure is not None:
            raise failure from None
        yield self._last(call, acc)

    # -- embeddings ------------------------------------------------------------------------

    def _embed_kwargs(
        self, model: ModelConfig, inputs: Sequence[str], params: Mapping[str, Any]
    ) -> dict[str, Any]:
        timeout = params.get("timeout", self.config.timeout)
        return embed_kwargs(
            model, inputs, params, self._key, self.config.api_base, timeout, self._headers
        )

    def embed(self, model: ModelConfig, inputs: Sequence[str], **params: Any) -> Embeddings:
        try:
            response = litellm.embedding(**self._embed_kwargs(model, inputs, params))
        except Exception as exc:
            failure = self._error(exc, Call(model, ()))
        else:
            return self._embeddings(model, response)
        raise failure from None

    async def aembed(self, model: ModelConfig, inputs: Sequence[str], **params: Any) -> Embeddings:
        try:
            response = await litellm.aembedding(**self._embed_kwargs(model, inputs, params))
        except Exception as exc:
            failure = self._error(exc, Call(model, ()))
        else:
            return self._embeddings(model, response)
        raise failure from None

    def _embeddings(self, model: ModelConfig, response: Any) -> Embeddings:
        vectors, usage = embeddings_of(response)
        return Embeddings(vectors, usage, self._cost(Call(model, ()), usage, response))

    def _last(self, call: Call, acc: StreamState) -> Delta:
        usage = acc.usage or estimate_usage(call, acc.output_text())
        cost = self._cost(call, usage)
        return Delta("", usage, acc.finish_reason, cost, acc.tool_calls())

    def discover(self, model_ids: Sequence[str] = ()) -> list[Listed]:
        return self._catalog.discover(model_ids)

    def count_tokens(self, model: ModelConfig, messages: Sequence[Message]) -> int | None:
        return self._catalog.count_tokens(model.model, messages)

    def info(self) -> dict[str, Any]:
        out = super().info()
        out.update(
            {
                "backend": f"litellm {_litellm_version()}",
                "timeout": self.config.timeout,
                "has_key": bool(self._key),
                "headers": sorted(self._headers),  # names only: values may be tokens
            }
        )
        return out

    def close(self) -> None:
        with self._lock:
            sdk, self._sdk = self._sdk, None
        if sdk is not None:
            sdk.close()
        self._catalog.close()

    # -- errors ----------------------------------------------------------------------------

    def _error(self, exc: Exception, call: Call, partial: bool = False) -> errors.ProviderError:
        cls, status, retry_after = _classify(exc)
        secrets = self._secrets + credentials(call.model.settings.get("headers"))
        refused = unreachable_cause(exc)
        if refused is not None:
            cls, status, message = errors.Unavailable, None, refused
        else:
            message = provider_words(redact(error_message(exc), secrets))
            if connection_failed(exc) and not isinstance(exc, TimeoutError):
                status = None  # litellm says 500 for a dropped connection: none was sent
        kw: dict[str, Any] = {
            "provider": self.name,
            "model": call.model.name,
            "status": status,
            "partial": partial,
            "endpoint": endpoint_of(self.config.api_base),
            "hint": hint_for(cls.kind, status, refused is not None),
            "unreachable": refused is not None,
        }
        if cls is errors.RateLimited:
            return errors.RateLimited(message, retry_after=retry_after, **kw)
        return cls(message, **kw)


# -- error translation -----------------------------------------------------------------------

_ErrorClass = type[errors.ProviderError]


def _classify(exc: Exception) -> tuple[_ErrorClass, int | None, float | None]:
    """Our error class, the HTTP status (if any) and Retry-After seconds for one exception."""
    status = status_of(exc)
    ex = litellm.exceptions
    if isinstance(exc, ex.ContextWindowExceededError):
        return errors.ContextOverflow, status or 400, None
    if isinstance(exc, (ex.Timeout, httpx.TimeoutException, TimeoutError)):
        return errors.Timeout, status if status != 408 else None, None
    if isinstance(exc, ex.RateLimitError) or status == 429:
        return errors.RateLimited, 429, retry_after(exc)
    if isinstance(exc, (ex.AuthenticationError, ex.PermissionDeniedError)) or status in (401, 403):
        return errors.AuthError, status, None
    if isinstance(exc, (ex.APIConnectionError, httpx.TransportError, ConnectionError)):
        return errors.Unavailable, None, None
    if status is not None and 400 <= status < 500:
        if status == 408:
            return errors.Timeout, status, None
        return errors.BadRequest, status, None
    if isinstance(exc, (ex.BadRequestError, ex.NotFoundError, ex.UnprocessableEntityError)):
        return errors.BadRequest, status, None
    # 5xx, ServiceUnavailable, InternalServerError and anything unknown.
    return errors.Unavailable, status, None


@functools.cache
def _litellm_prefixes() -> frozenset[str]:
    return frozenset(str(getattr(p, "value", p)) for p in litellm.provider_list)


def _model_info(model: str) -> Any:
    return litellm.get_model_info(model)


def _litellm_version() -> str:
    try:
        from importlib.metadata import version

        return version("litellm")
    except Exception:
        return "unknown"


__all__ = ["LiteLLMProvider", "parse_retry_after"]

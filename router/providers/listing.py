"""Asking a server what it serves: OpenAI, Anthropic, OpenRouter and Ollama listings.

Each API lists models its own way, and a listing that fails must say so: a down
Ollama is down, not a provider with no models. So every function here raises a
`ProviderError` with the endpoint, the status and the server's own words.

    kind        endpoint              auth                            extras
    openai      GET {base}/models     Authorization: Bearer           -
    openrouter  GET {base}/models     Authorization: Bearer           context_length, pricing
    anthropic   GET {base}/v1/models  x-api-key, anthropic-version    -
    ollama      GET {base}/api/tags   -                               -

A provider with no `api_base` uses the kind's public endpoint.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from router import errors
from router.config.model import ProviderConfig
from router.providers.base import Listed
from router.secrets import redact

if TYPE_CHECKING:
    import httpx

ANTHROPIC_VERSION = "2023-06-01"

DEFAULT_BASES: Mapping[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "openrouter": "https://openrouter.ai/api/v1",
    "ollama": "http://127.0.0.1:11434",
}

# litellm model-id prefixes -> the API that lists them
_PREFIX_KIND = {
    "openai": "openai",
    "anthropic": "anthropic",
    "openrouter": "openrouter",
    "ollama": "ollama",
    "ollama_chat": "ollama",
}


def api_kind(api_base: str | None, api: str | None, model_ids: Sequence[str]) -> str | None:
    """Which listing API fits a provider: its `api:` setting, its base URL, its model ids.

    None: an OpenAI-compatible base or an Ollama root, to be told apart by asking.
    """
    if api:
        return api
    base = (api_base or "").rstrip("/")
    if "openrouter.ai" in base:
        return "openrouter"
    if "anthropic.com" in base:
        return "anthropic"
    if base:
        return "openai" if base.endswith("/v1") else None
    for mid in model_ids:
        kind = _PREFIX_KIND.get(mid.partition("/")[0])
        if kind is not None:
            return kind
    return "openai"


def listed_id(kind: str, litellm_id: str) -> str:
    """The id a listing uses for a litellm model id (`openrouter/google/x` -> `google/x`)."""
    prefix, sep, rest = litellm_id.partition("/")
    if sep and _PREFIX_KIND.get(prefix) == kind:
        return rest
    return litellm_id


class Lister:
    """Lists one provider's models over HTTP; raises ProviderError with the server's words."""

    def __init__(
        self,
        provider: str,
        key: str | None,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        timeout: float = 5.0,
    ) -> None:
        self.provider = provider
        self._key = key
        self._headers = dict(headers)
        self._secrets = list(secrets)
        self._timeout = timeout
        self._client: httpx.Client | None = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def models(self, kind: str | None, api_base: str | None) -> list[Listed]:
        """Models at `api_base` (or the kind's public endpoint)."""
        base = (api_base or DEFAULT_BASES.get(kind or "openai", "")).rstrip("/")
        if kind == "ollama":
            return self._ollama(base)
        if kind == "anthropic":
            url = base + ("/models" if base.endswith("/v1") else "/v1/models")
            headers = {"anthropic-version": ANTHROPIC_VERSION}
            if self._key:
                headers["x-api-key"] = self._key
            return [Listed(str(m["id"])) for m in self._get(url, headers, "data")]
        if kind is None:  # an Ollama root, or an OpenAI-compatible server without /v1
            try:
                return self._ollama(base)
            except errors.BadRequest as exc:
                if exc.status != 404:
                    raise
            base += "/v1"
        return [_openai_item(m) for m in self._get(base + "/models", self._bearer(), "data")]

    def anthropic_count(
        self, api_base: str | None, model: str, messages: Sequence[Mapping[str, Any]]
    ) -> int:
        """Anthropic's exact input tokens: POST /v1/messages/count_tokens."""
        base = (api_base or DEFAULT_BASES["anthropic"]).rstrip("/")
        url = base + (
            "/messages/count_tokens" if base.endswith("/v1") else "/v1/messages/count_tokens"
        )
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if self._key:
            headers["x-api-key"] = self._key
        system = "\n".join(_text(m) for m in messages if m.get("role") == "system")
        turns = [
            {"role": "assistant" if m.get("role") == "assistant" else "user", "content": _text(m)}
            for m in messages
            if m.get("role") != "system"
        ]
        body: dict[str, Any] = {"model": listed_id("anthropic", model), "messages": turns}
        if system:
            body["system"] = system
        (answer,) = list(self.request("POST", url, headers, body=body))
        try:
            return int(answer["input_tokens"])
        except (KeyError, TypeError, ValueError):
            raise errors.Unavailable(
                f"POST {url}: no input_tokens in the answer", provider=self.provider
            ) from None

    def _ollama(self, base: str) -> list[Listed]:
        return [Listed(str(m["name"])) for m in self._get(base + "/api/tags", {}, "models")]

    def _bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    def _get(self, url: str, auth: Mapping[str, str], field: str) -> list[Mapping[str, Any]]:
        return [*self.request("GET", url, auth, field=field)]

    def request(
        self,
        method: str,
        url: str,
        auth: Mapping[str, str],
        *,
        body: Mapping[str, Any] | None = None,
        field: str | None = None,
    ) -> Iterator[Mapping[str, Any]]:
        """One JSON request; yields `body[field]`'s items (or the body itself)."""
        import httpx  # here: the native openai adapter imports this module, not httpx

        if self._client is None:
            self._client = httpx.Client(timeout=httpx.Timeout(self._timeout, connect=2.0))
        try:
            resp = self._client.request(method, url, headers={**self._headers, **auth}, json=body)
        except httpx.TimeoutException:
            failure: errors.ProviderError = errors.Timeout(
                f"{method} {url}: no answer within {self._timeout:g}s", provider=self.provider
            )
        except httpx.HTTPError as exc:
            failure = errors.Unavailable(
                f"{method} {url}: {self._words(str(exc) or type(exc).__name__)}",
                provider=self.provider,
            )
        else:
            yield from self._parse(method, url, resp, field)
            return
        raise failure

    def _parse(
        self, method: str, url: str, resp: httpx.Response, field: str | None
    ) -> Iterator[Mapping[str, Any]]:
        if resp.status_code >= 400:
            raise http_error(self.provider, method, url, resp.status_code, resp.text, self._words)
        try:
            data = resp.json()
            items = data[field] if field is not None else [data]
            if not isinstance(items, list):
                raise TypeError(f"'{field}' is not a list")
        except (ValueError, TypeError, KeyError) as exc:
            raise errors.Unavailable(
                f"{method} {url}: unexpected answer ({exc})", provider=self.provider
            ) from None
        yield from (i for i in items if isinstance(i, Mapping))

    def _words(self, text: str) -> str:
        return redact(text, self._secrets)


def with_price_map(model_info: Callable[[str], Any], kind: str | None, m: Listed) -> Listed:
    """Fill context and price from litellm's map (`model_info`) where the listing gave none."""
    if m.context is not None and m.cost_input is not None:
        return m
    prefix = {"anthropic": "anthropic/", "ollama": "ollama/", "openrouter": "openrouter/"}
    info: Any = None
    for mid in dict.fromkeys((prefix.get(kind or "", "") + m.id, m.id)):
        with contextlib.suppress(Exception):  # not in the map: unknown stays unknown
            info = model_info(mid)
            break
    if not info:
        return m
    context = m.context or info.get("max_input_tokens") or info.get("max_tokens")
    p_in, p_out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if m.cost_input is None and isinstance(p_in, (int, float)) and isinstance(p_out, (int, float)):
        return Listed(m.id, context, float(p_in) * 1e6, float(p_out) * 1e6)
    return Listed(m.id, context, m.cost_input, m.cost_output)


class Catalog:
    """One provider's view of its server: its listing, OpenRouter's prices (read once,
    for models the YAML prices not) and Anthropic's exact token counts."""

    def __init__(
        self,
        config: ProviderConfig,
        key: str | None,
        headers: Mapping[str, str],
        secrets: Sequence[str],
        model_info: Callable[[str], Any],
    ) -> None:
        self.config = config
        self._lister = Lister(config.name, key, headers, secrets)
        self._model_info = model_info
        self._prices: dict[str, tuple[float, float]] = {}
        self._prices_read = False

    def kind(self, model_ids: Sequence[str]) -> str | None:
        return api_kind(self.config.api_base, self.config.settings.get("api"), model_ids)

    def discover(self, model_ids: Sequence[str] = ()) -> list[Listed]:
        """The server's listing; what it leaves out comes from the price map where known."""
        kind = self.kind(model_ids)
        found = self._lister.models(kind, self.config.api_base)
        self._prices = {
            m.id: (m.cost_input, m.cost_output)
            for m in found
            if m.cost_input is not None and m.cost_output is not None
        }
        return [with_price_map(self._model_info, kind, m) for m in found]

    def openrouter_price(self, model: str) -> tuple[float, float] | None:
        """OpenRouter's own price (USD per 1M tokens in, out) for `model`."""
        if not model.startswith("openrouter/"):
            return None
        if not self._prices_read:
            self._prices_read = True
            with contextlib.suppress(errors.ProviderError):  # the price map is the fallback
                self.discover([model])
        return self._prices.get(listed_id("openrouter", model))

    def count_tokens(self, model: str, messages: Sequence[Mapping[str, Any]]) -> int | None:
        """Anthropic's count_tokens for Anthropic models; None for the rest."""
        if self.kind([model]) != "anthropic":
            return None
        return self._lister.anthropic_count(self.config.api_base, model, messages)

    def close(self) -> None:
        self._lister.close()


def http_error(
    provider: str,
    method: str,
    url: str,
    status: int,
    body: str,
    clean: Callable[[str], str] = str,
) -> errors.ProviderError:
    """The error for an HTTP failure, in the server's own words."""
    words = clean(server_words(body) or body[:200] or f"HTTP {status}")
    message = f"{method} {url}: {status}: {words}"
    kw: dict[str, Any] = {"provider": provider, "status": status}
    if status in (401, 403):
        return errors.AuthError(message, **kw)
    if status == 429:
        return errors.RateLimited(message, **kw)
    if 400 <= status < 500:
        return errors.BadRequest(message, **kw)
    return errors.Unavailable(message, **kw)


def server_words(body: str) -> str:
    """The message in an error body: {"error": {"message"}}, {"error": "..."}, ..."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:200]
    if isinstance(data, Mapping):
        err = data.get("error", data)
        if isinstance(err, Mapping):
            return str(err.get("message") or err.get("type") or "")
        return str(err)
    return ""


def _text(m: Mapping[str, Any]) -> str:
    content = m.get("content")
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def _openai_item(m: Mapping[str, Any]) -> Listed:
    """OpenAI's and OpenRouter's shape; OpenRouter adds context_length and pricing."""
    context = m.get("context_length")
    pricing = m.get("pricing") if isinstance(m.get("pricing"), Mapping) else {}
    assert isinstance(pricing, Mapping)
    return Listed(
        str(m["id"]),
        int(context) if isinstance(context, (int, float)) else None,
        _per_million(pricing.get("prompt")),
        _per_million(pricing.get("completion")),
    )


def _per_million(per_token: Any) -> float | None:
    """OpenRouter prices are strings in USD per token."""
    try:
        value = float(per_token)
    except (TypeError, ValueError):
        return None
    return None if value < 0 else value * 1_000_000


__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_BASES",
    "Catalog",
    "Listed",
    "Lister",
    "api_kind",
    "http_error",
    "listed_id",
    "server_words",
    "with_price_map",
]

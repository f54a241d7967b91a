"""Failures of the `openai` adapter, mapped into the router's tree as the litellm adapter
maps litellm's exceptions (the same adapter contract tests run against both):

    429 (Retry-After / retry-after-ms kept)     RateLimited
    401, 403                                    AuthError
    408, a read or connect timeout              Timeout
    400/413/422 saying the prompt is too long   ContextOverflow (status kept, 400 if none)
    other 4xx                                   BadRequest
    5xx, refused, reset, TLS, a broken reply    Unavailable

Each message says where (method and URL, never its user:password or query) and
what (the status and the provider's own words), with keys and credential header
values masked.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

from router import errors
from router.config.model import ModelConfig
from router.providers.failure_words import hint_for, unreachable_cause
from router.providers.http11 import Endpoint, Response
from router.providers.litellm_support import credentials, parse_retry_after
from router.secrets import redact

# litellm's `is_error_str_context_window_exceeded` substrings (lower case), and a few
# more that OpenAI-compatible servers (Ollama, vLLM, llama.cpp) write.
_CONTEXT_SUBSTRINGS = (
    "exceed context limit",
    "this model's maximum context length is",
    "requested token count exceeds the model's maximum context length",
    "string too long. expected a string with maximum length",
    "model's maximum context limit",
    "is longer than the model's context length",
    "input tokens exceed the configured limit",
    "`inputs` tokens + `max_new_tokens` must be",
    "exceeds the available context size",
    "exceeds the maximum number of tokens allowed",
    '"code": "context_length_exceeded"',
    "prompt is too long",
    "input length exceeds maximum context length",
    "maximum context length",
)
_CONTEXT_PAIRS = (
    ("current length is", "while limit is"),
    ("maximum input length is", "tokens"),
    ("input too long:", "input tokens, limit is"),
)


def is_context_overflow(message: str, code: Any = None) -> bool:
    """Whether a provider's error says the prompt does not fit the model's window."""
    if code == "context_length_exceeded":
        return True
    text = message.lower()
    # Parameter validation, not the prompt (OpenAI's "user" longer than 64 characters).
    if "string_above_max_length" in text or ("invalid 'user'" in text and "too long" in text):
        return False
    if any(s in text for s in _CONTEXT_SUBSTRINGS):
        return True
    return any(a in text and b in text for a, b in _CONTEXT_PAIRS)


def retry_after_of(headers: Mapping[str, str]) -> float | None:
    """Seconds from retry-after-ms or Retry-After (seconds or an HTTP-date)."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    return parse_retry_after(value) if value is not None else None


def provider_words(body: bytes) -> tuple[str, Any]:
    """The provider's own message and error code from an error body, whatever its shape:
    {"error": {"message", "code"}}, {"error": "..."}, {"message"}, {"detail"} or text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, str):
            return err, None
        if isinstance(err, dict):
            for key in ("message", "detail", "msg"):
                value = err.get(key)
                if isinstance(value, str) and value:
                    return value, err.get("code") or err.get("type")
            detail = err.get("detail")
            if detail is not None:
                return json.dumps(detail), err.get("code")
    return text or "(empty body)", None


class ErrorMapper:
    """Builds this provider's errors; holds what must be masked in their messages."""

    def __init__(self, provider: str, endpoint: Endpoint, secrets: Sequence[str]) -> None:
        self.provider = provider
        self.endpoint = endpoint
        self.secrets = [s for s in secrets if s]

    def where(self, method: str, target: str) -> str:
        return f"{method} {self.endpoint.scheme}://{self.endpoint.host_header}{target}"

    def build(
        self,
        cls: type[errors.ProviderError],
        text: str,
        model: ModelConfig,
        status: int | None,
        partial: bool = False,
        retry_after: float | None = None,
        **extra: Any,
    ) -> errors.ProviderError:
        if len(text) > 1200:
            text = text[:1200] + "..."
        secrets = self.secrets + credentials(model.settings.get("headers"))
        message = redact(text, secrets)
        kw: dict[str, Any] = {
            "provider": self.provider,
            "model": model.name,
            "status": status,
            "partial": partial,
            **extra,
        }
        if cls is errors.RateLimited:
            return errors.RateLimited(message, retry_after=retry_after, **kw)
        return cls(message, **kw)

    def from_response(
        self, resp: Response, model: ModelConfig, target: str, partial: bool = False
    ) -> errors.ProviderError:
        words, code = provider_words(resp.body)
        status = resp.status
        cls = classify_status(status, words, code)
        text = f"HTTP {status} from {self.where('POST', target)}: {words}"
        retry = retry_after_of(resp.headers) if cls is errors.RateLimited else None
        return self.build(cls, text, model, status, partial, retry)

    def bad_reply(self, resp: Response, model: ModelConfig, target: str) -> errors.ProviderError:
        snippet = resp.body[:200].decode("utf-8", "replace")
        text = (
            f"{self.where('POST', target)} answered HTTP {resp.status} with a body that is "
            f"not the API's JSON: {snippet!r}"
        )
        return self.build(errors.Unavailable, text, model, resp.status)


def classify_status(status: int, words: str, code: Any) -> type[errors.ProviderError]:
    if status == 429:
        return errors.RateLimited
    if status in (401, 403):
        return errors.AuthError
    if status == 408:
        return errors.Timeout
    if status in (400, 413, 422) and is_context_overflow(words, code):
        return errors.ContextOverflow
    if 400 <= status < 500:
        return errors.BadRequest
    return errors.Unavailable


def transport_error(
    exc: Exception, mapper: ErrorMapper, model: ModelConfig, target: str, partial: bool = False
) -> errors.ProviderError:
    """A failure with no HTTP status: a timeout, a refused or dropped connection, TLS."""
    if isinstance(exc, errors.ProviderError):
        return exc
    where = mapper.where("POST", target)
    if isinstance(exc, TimeoutError):
        return mapper.build(errors.Timeout, f"{where}: timed out", model, None, partial)
    refused = unreachable_cause(exc)
    if refused is not None:  # nothing listens there: the runtime marks the model down
        hint = hint_for("unavailable", None, True)
        text = f"{where}: {refused}"
        return mapper.build(
            errors.Unavailable, text, model, None, partial, unreachable=True, hint=hint
        )
    if isinstance(exc, ssl.SSLError):  # before ValueError: a failed verify is both
        detail = getattr(exc, "verify_message", None)
        what = f"TLS failed ({exc.reason or exc}{': ' + detail if detail else ''})"
    elif isinstance(exc, OSError):
        what = f"{type(exc).__name__}: {exc.strerror or exc}"
    elif isinstance(exc, ValueError):  # a model's header with a line break
        return mapper.build(errors.BadRequest, f"{where}: {exc}", model, None, partial)
    else:
        what = f"{type(exc).__name__}: {exc}"
    return mapper.build(errors.Unavailable, f"{where}: {what}", model, None, partial)


def error_from_event(
    chunk: Mapping[str, Any], mapper: ErrorMapper, model: ModelConfig, target: str, partial: bool
) -> errors.ProviderError:
    """An error a server sends inside an SSE stream (after a 200 head)."""
    err = chunk.get("error")
    body = json.dumps({"error": err}).encode()
    words, code = provider_words(body)
    raw_status = err.get("status") or err.get("code") if isinstance(err, dict) else None
    status = raw_status if isinstance(raw_status, int) and 400 <= raw_status < 600 else None
    if status is not None:
        cls = classify_status(status, words, code)
    elif is_context_overflow(words, code):
        cls = errors.ContextOverflow
    else:
        cls = errors.Unavailable
    text = f"error event in the stream from {mapper.where('POST', target)}: {words}"
    return mapper.build(cls, text, model, status, partial)


__all__ = [
    "ErrorMapper",
    "classify_status",
    "error_from_event",
    "is_context_overflow",
    "provider_words",
    "retry_after_of",
    "transport_error",
]

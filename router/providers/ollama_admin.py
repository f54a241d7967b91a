"""Ollama's model store: `POST /api/pull` (a progress stream) and `DELETE /api/delete`.

`pull()` reads Ollama's NDJSON stream line by line and hands each step to a
callback (status, and bytes completed of total while downloading), so a caller
can draw a progress bar. An `{"error": ...}` line or an HTTP error becomes a
ProviderError in Ollama's own words.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from router import errors
from router.providers.listing import http_error, server_words


@dataclass(frozen=True, slots=True)
class PullProgress:
    status: str  # "pulling manifest", "downloading sha256:...", "success", ...
    completed: int | None = None  # bytes of this layer
    total: int | None = None


ProgressFn = Callable[[PullProgress], None]


def pull(
    provider: str,
    base: str,
    model: str,
    on_progress: ProgressFn | None = None,
    timeout: float = 3600.0,
) -> PullProgress:
    """Pull `model` into the Ollama at `base`; the last step (status "success")."""
    url = base.rstrip("/") + "/api/pull"
    last = PullProgress("nothing received")
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0)) as client,
            client.stream("POST", url, json={"model": model, "stream": True}) as resp,
        ):
            if resp.status_code >= 400:
                body = resp.read().decode("utf-8", "replace")
                raise http_error(provider, "POST", url, resp.status_code, body)
            for line in resp.iter_lines():
                if not line.strip():
                    continue
                step = json.loads(line)
                if "error" in step:
                    raise errors.Unavailable(
                        f"POST {url}: pulling {model}: {step['error']}", provider=provider
                    )
                last = PullProgress(
                    str(step.get("status", "")), step.get("completed"), step.get("total")
                )
                if on_progress is not None:
                    on_progress(last)
    except httpx.HTTPError as exc:
        raise errors.Unavailable(
            f"POST {url}: {exc or type(exc).__name__}", provider=provider
        ) from None
    except ValueError as exc:
        raise errors.Unavailable(
            f"POST {url}: unexpected answer ({exc})", provider=provider
        ) from None
    if last.status != "success":
        raise errors.Unavailable(
            f"POST {url}: the stream ended at {last.status!r}, not 'success'", provider=provider
        )
    return last


def delete(provider: str, base: str, model: str, timeout: float = 30.0) -> None:
    """Remove `model` from the Ollama at `base` (404 from Ollama: it has no such model)."""
    url = base.rstrip("/") + "/api/delete"
    try:
        resp = httpx.request("DELETE", url, json={"model": model}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise errors.Unavailable(
            f"DELETE {url}: {exc or type(exc).__name__}", provider=provider
        ) from None
    if resp.status_code >= 400:
        raise http_error(provider, "DELETE", url, resp.status_code, resp.text, str)


__all__ = ["ProgressFn", "PullProgress", "delete", "pull", "server_words"]

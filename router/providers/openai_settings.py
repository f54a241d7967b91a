"""Settings of the `openai` adapter, read once from the provider's config.

The config schema (schemas/config.schema.json, `openai_provider`) already rejected
unknown keys and wrong types; this turns the values into what the adapter sends.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from router.config.model import ProviderConfig
from router.errors import ConfigError
from router.providers.http11 import Endpoint, Proxy

DEFAULT_API_BASE = "https://api.openai.com/v1"
DEFAULT_TIMEOUT = 600.0  # the OpenAI SDK's default
USER_AGENT = "llm-router/0.1"


@dataclass(frozen=True, slots=True)
class OpenAISettings:
    api_base: str = DEFAULT_API_BASE
    api_key: str | None = None  # None: no Authorization header (local servers)
    headers: Mapping[str, str] = field(default_factory=dict)
    organization: str | None = None
    project: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True  # False: no TLS checks; a path: a CA bundle
    max_connections: int = 100  # per event loop (async), idle ones kept (sync)
    keepalive_expiry: float = 30.0  # seconds an idle connection is reused for
    proxy: str | bool | None = None  # None: HTTPS_PROXY / HTTP_PROXY / NO_PROXY; False: none

    @classmethod
    def from_config(cls, config: ProviderConfig) -> OpenAISettings:
        s = config.settings

        def where(key: str) -> dict[str, Any]:
            w = config.where
            return {"file": w.file, "line": w.line, "pointer": f"{w.pointer}.{key}".lstrip(".")}

        headers = {str(k): str(v) for k, v in dict(s.get("headers") or {}).items()}
        for name, value in headers.items():
            if _unsafe(name) or _unsafe(value) or not name:
                raise ConfigError(
                    f"header {name!r} of provider {config.name!r}: names and values may "
                    "not hold line breaks",
                    **where("headers"),
                )
        api_base = config.api_base or DEFAULT_API_BASE
        try:
            Endpoint.parse(api_base)
        except ValueError as exc:
            message = f"provider {config.name!r}: api_base {exc}"
            raise ConfigError(message, **where("api_base")) from None
        verify = s.get("verify", True)
        if isinstance(verify, str) and not os.path.isfile(os.path.expanduser(verify)):
            message = f"provider {config.name!r}: verify names no file: {verify!r}"
            raise ConfigError(message, **where("verify"))
        if isinstance(verify, str):
            verify = os.path.expanduser(verify)
        proxy = s.get("proxy")
        if isinstance(proxy, str) and proxy:
            try:
                Proxy.parse(proxy)
            except ValueError as exc:
                message = f"provider {config.name!r}: proxy {exc}"
                raise ConfigError(message, **where("proxy")) from None
        return cls(
            api_base=api_base,
            api_key=config.api_key.reveal() if config.api_key else None,
            headers=headers,
            organization=_text(s.get("organization")),
            project=_text(s.get("project")),
            timeout=config.timeout if config.timeout is not None else DEFAULT_TIMEOUT,
            verify=verify if isinstance(verify, (bool, str)) else True,
            max_connections=int(s.get("max_connections", 100)),
            keepalive_expiry=float(s.get("keepalive_expiry", 30.0)),
            proxy=proxy if isinstance(proxy, (str, bool)) else None,
        )

    def head_bytes(self, endpoint: Endpoint, extra: Mapping[str, Any] | None = None) -> bytes:
        """The header lines a request carries, encoded once; `extra` (a model's own
        `headers:`) adds to the provider's and wins over one of the same name."""
        headers = dict(self.headers)
        for k, v in dict(extra or {}).items():
            name, value = str(k), str(v)
            if _unsafe(name) or _unsafe(value):
                raise ValueError(f"header {name!r} holds a line break")
            for old in [h for h in headers if h.lower() == name.lower()]:
                del headers[old]
            headers[name] = value
        lines = [
            f"Host: {endpoint.host_header}",
            f"User-Agent: {USER_AGENT}",
            "Content-Type: application/json",
        ]
        if self.api_key:
            lines.append(f"Authorization: Bearer {self.api_key}")
        if self.organization:
            lines.append(f"OpenAI-Organization: {self.organization}")
        if self.project:
            lines.append(f"OpenAI-Project: {self.project}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return "".join(line + "\r\n" for line in lines).encode("utf-8")


def _unsafe(text: str) -> bool:
    return "\r" in text or "\n" in text or "\0" in text


def _text(value: Any) -> str | None:
    return str(value) if value else None


__all__ = ["DEFAULT_API_BASE", "OpenAISettings"]

"""A provider that answers without a network: for engine tests and dry runs.

It accepts and ignores `api_key`, `api_base` and `timeout`, so the engine's
handling of keys and disabled providers can be tested with no network. It is
never proof that an adapter works.

Settings (all optional): `reply` (a template, `{prompt}` is the last user
message, `{model}` the model's id), `fail` (an error kind to raise on every
call: timeout, rate_limited, unavailable, auth, bad_request, context_overflow),
`delay` (seconds per call). The reply template may also use `{system}` (the
system message) and `{params}` (the call's params as sorted JSON), so a dry run
shows what an adapter would have been sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import ClassVar

from router import errors
from router.providers.base import Call, Completion, Delta, Listed, Provider
from router.types import Usage

_FAILURES: dict[str, type[errors.ProviderError]] = {
    "timeout": errors.Timeout,
    "rate_limited": errors.RateLimited,
    "unavailable": errors.Unavailable,
    "auth": errors.AuthError,
    "bad_request": errors.BadRequest,
    "context_overflow": errors.ContextOverflow,
}


def last_user_text(call: Call) -> str:
    for m in reversed(call.messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class MockProvider(Provider):
    type: ClassVar[str] = "mock"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def _answer(self, call: Call) -> str:
        settings = {**self.config.settings, **call.model.settings}
        if settings.get("delay"):
            time.sleep(float(settings["delay"]))
        fail = settings.get("fail")
        if fail:
            exc = _FAILURES.get(str(fail), errors.Unavailable)
            raise exc(f"mock failure: {fail}", provider=self.name, model=call.model.name)
        template = str(settings.get("reply", "[{model}] {prompt}"))
        system = next(
            (m.get("content", "") for m in call.messages if m.get("role") == "system"), ""
        )
        fields = {
            "{prompt}": last_user_text(call),
            "{model}": call.model.model,
            "{system}": str(system),
            "{params}": json.dumps(dict(call.params), sort_keys=True, default=str),
        }
        for key, value in fields.items():
            template = template.replace(key, value)
        return template

    def complete(self, call: Call) -> Completion:
        text = self._answer(call)
        n_in = sum(len(str(m.get("content", ""))) for m in call.messages) // 4 + 1
        return Completion(text, Usage(n_in, len(text) // 4 + 1), "stop")

    def stream(self, call: Call) -> Iterator[Delta]:
        text = self._answer(call)
        words = text.split(" ")
        for i, w in enumerate(words):
            yield Delta(w if i == 0 else " " + w)
        n_in = sum(len(str(m.get("content", ""))) for m in call.messages) // 4 + 1
        yield Delta("", Usage(n_in, len(text) // 4 + 1), "stop")

    def discover(self, model_ids: Sequence[str] = ()) -> list[Listed]:
        return [Listed(str(m)) for m in self.config.settings.get("models", [])]

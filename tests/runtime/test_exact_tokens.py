"""settings.exact_tokens: the model's own count decides; off, the estimate (no I/O)."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from router import Router
from router.testing import FakeProviderServer
from tests.providers.llama_fixtures import BASE_SETTINGS, MODEL_FILE, llama_cpp_module, models_dir

__all__ = ["llama_cpp_module", "models_dir"]  # fixtures, used by name

KEY = "sk-ant-canary-exact-0123456789"


@pytest.fixture
def fake() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def write(tmp_path: Path, fake: FakeProviderServer, exact: bool) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            providers:
              claude: {{type: litellm, api_key: {KEY}, api_base: "{fake.url}", api: anthropic}}
            models:
              # a window that 12 words fit by Anthropic's count but not by the estimate
              small: {{provider: claude, model: anthropic/claude-haiku-4-5, context: 20}}
              big: {{provider: claude, model: anthropic/claude-sonnet-4-5, context: 100000}}
            rules:
              - {{name: default, targets: [small, big], params: {{max_tokens: 4}}}}
            settings: {{usage_db: ":memory:", exact_tokens: {str(exact).lower()}}}
            """
        )
    )
    return path


PROMPT = "one two three four five six seven eight nine ten eleven twelve-and-more-letters"


def test_exact_count_from_anthropic_decides(tmp_path: Path, fake: FakeProviderServer) -> None:
    with Router.from_config(write(tmp_path, fake, exact=False)) as r:
        estimated = r.explain(PROMPT)
    assert estimated.tokens > 16 and estimated.model == "big"
    assert not [q for q in fake.requests if q.path.endswith("count_tokens")]  # no I/O
    with Router.from_config(write(tmp_path, fake, exact=True)) as r:
        exact = r.explain(PROMPT)
        assert r.count_tokens(PROMPT, model="small") == 15
    assert exact.tokens == 15 and exact.model == "small"
    sent = [q for q in fake.requests if q.path == "/v1/messages/count_tokens"]
    # explain: counted by the model the estimate chose; count_tokens: by the one named
    assert [q.body["model"] for q in sent] == ["claude-sonnet-4-5", "claude-haiku-4-5"]
    assert sent[0].headers["x-api-key"] == KEY and sent[0].headers["anthropic-version"]
    assert sent[0].body["messages"] == [{"role": "user", "content": PROMPT}]


@pytest.mark.llama
def test_gguf_tokenizer_counts(tmp_path: Path, models_dir: Path, llama_cpp_module) -> None:
    path = tmp_path / "rules.yaml"
    settings = ", ".join(f"{k}: {v}" for k, v in BASE_SETTINGS.items())
    path.write_text(
        textwrap.dedent(
            f"""\
            providers:
              local: {{type: llama_cpp, models_dir: "{models_dir}", {settings}}}
            models:
              gemma: {{provider: local, model: {MODEL_FILE}, context: 1024}}
            rules:
              - {{name: default, targets: [gemma]}}
            """
        )
    )
    text = "The quick brown fox jumps over the lazy dog."
    with Router.from_config(path) as r:
        n = r.count_tokens(text, model="gemma")
    vocab = llama_cpp_module.Llama(
        model_path=str(models_dir / MODEL_FILE), vocab_only=True, verbose=False
    )
    try:
        assert n == len(vocab.tokenize(text.encode(), add_bos=True, special=True))
    finally:
        vocab.close()
    assert 8 <= n <= 14  # words and punctuation, plus BOS: not the character estimate

"""Which listing API a provider gets, and the errors a listing raises (real HTTP)."""

from __future__ import annotations

import pytest

from router import errors
from router.providers.listing import DEFAULT_BASES, Lister, api_kind, listed_id
from router.testing import FakeProviderServer, unauthorized


@pytest.mark.parametrize(
    ("api_base", "api", "ids", "kind"),
    [
        (None, None, ["openai/gpt-4o-mini"], "openai"),
        (None, None, ["anthropic/claude-sonnet-4-5"], "anthropic"),
        (None, None, ["ollama_chat/llama3.2"], "ollama"),
        ("https://openrouter.ai/api/v1", None, ["openrouter/google/x"], "openrouter"),
        ("http://127.0.0.1:11434", None, ["ollama/llama3"], None),  # asked: /api/tags first
        ("http://127.0.0.1:8000/v1", None, [], "openai"),
        ("http://127.0.0.1:8000", "anthropic", [], "anthropic"),
    ],
)
def test_api_kind(api_base, api, ids, kind) -> None:
    assert api_kind(api_base, api, ids) == kind


def test_default_endpoints_are_the_public_ones() -> None:
    assert DEFAULT_BASES["openai"] == "https://api.openai.com/v1"
    assert DEFAULT_BASES["anthropic"] == "https://api.anthropic.com"
    assert listed_id("anthropic", "anthropic/claude-x") == "claude-x"
    assert listed_id("openrouter", "openrouter/google/gemini") == "google/gemini"
    assert listed_id("openai", "gpt-4o") == "gpt-4o"


def test_a_401_is_an_auth_error_with_the_servers_words_and_no_key() -> None:
    key = "sk-canary-listing-0123456789"
    with FakeProviderServer() as fake:
        lister = Lister("p", key, {}, [key])
        # the fake answers listings for anyone: a scripted 401 goes to a completion route
        fake.enqueue(unauthorized())
        with pytest.raises(errors.AuthError) as info:
            auth = {"Authorization": f"Bearer {key}"}
            list(lister.request("POST", fake.base_url + "/chat/completions", auth, body={}))
        lister.close()
    text = str(info.value)
    assert "401" in text and "/v1/chat/completions" in text
    assert key not in text

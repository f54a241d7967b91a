"""The local adapter never writes a special token (`<start_of_image>`) as text."""

from __future__ import annotations

from typing import Any

import pytest

from router.providers.llama_cpp import LlamaCppProvider
from tests.providers.llama_fixtures import (
    llama_cpp_module,
    loaded_llm,
    local,
    make_call,
    models_dir,
)

pytestmark = pytest.mark.llama
_FIXTURES = (llama_cpp_module, loaded_llm, local, models_dir)


def test_special_tokens_cannot_be_sampled(local: LlamaCppProvider, loaded_llm: Any) -> None:
    image = loaded_llm.tokenize(b"<start_of_image>", add_bos=False, special=True)
    assert len(image) == 1
    # Push the model hard towards the token: without the guard it writes it every time.
    out = loaded_llm.create_completion(
        "The picture:", max_tokens=4, logit_bias={image[0]: 100.0}, temperature=0
    )
    assert "<start_of_image>" not in out["choices"][0]["text"]
    done = local.complete(make_call("Describe the image:", max_tokens=16))
    assert "<start_of_image>" not in done.text and "<unused" not in done.text


def test_the_end_of_turn_token_stays_allowed(loaded_llm: Any, llama_cpp_module: Any) -> None:
    from router.providers.llama_special import special_token_ids

    ids = set(special_token_ids(llama_cpp_module, loaded_llm.model).tolist())
    end = loaded_llm.tokenize(b"<end_of_turn>", add_bos=False, special=True)
    assert loaded_llm.token_eos() not in ids and end[0] not in ids
    assert loaded_llm.tokenize(b"<start_of_image>", add_bos=False, special=True)[0] in ids
    # Text that Gemma's vocabulary marks user-defined stays allowed.
    for text in (b"\n", b"\n\n", b"<table>", b"    "):
        tokens = loaded_llm.tokenize(text, add_bos=False, special=True)
        assert len(tokens) == 1 and tokens[0] not in ids, text

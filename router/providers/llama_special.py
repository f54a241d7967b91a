"""Keep llama.cpp from writing special tokens (`<start_of_image>`, `<unused12>`) as text.

A GGUF's vocabulary marks control, unused and user-defined tokens; llama.cpp renders
user-defined ones as text, so a small model that samples a marker such as
`<start_of_image>` prints it. Their logits
are set to -inf before sampling (end-of-generation tokens stay allowed, so the model
can still stop). The set is read once per loaded model.
"""

from __future__ import annotations

import re
from typing import Any

_SPECIAL_ATTRS = ("LLAMA_TOKEN_ATTR_CONTROL", "LLAMA_TOKEN_ATTR_UNUSED", "LLAMA_TOKEN_ATTR_UNKNOWN")
# User-defined tokens are mostly text (Gemma's "\n\n", runs of spaces, "<table>"); only
# the marker-like ones are not: <start_of_image>, <end_of_image>, [multimodal].
_MARKER = re.compile(r"^(<[a-z]+(?:_[a-z]+)+>|\[[a-z_]+\])$")


class NoSpecialTokens:
    """A llama.cpp logits processor: special tokens can never be sampled."""

    def __init__(self, ids: Any) -> None:
        self.ids = ids  # a numpy array of token ids

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if len(self.ids):
            scores[self.ids] = -float("inf")
        return scores


def special_token_ids(llama_cpp: Any, model: Any) -> Any:
    """Ids of the tokens that are not text and do not end generation."""
    import numpy as np

    vocab = llama_cpp.llama_model_get_vocab(model)
    mask = 0
    for name in _SPECIAL_ATTRS:
        mask |= int(getattr(llama_cpp, name, 0))
    user = int(getattr(llama_cpp, "LLAMA_TOKEN_ATTR_USER_DEFINED", 0))
    get_attr = llama_cpp.llama_vocab_get_attr
    is_eog = llama_cpp.llama_vocab_is_eog
    ids = []
    for i in range(llama_cpp.llama_vocab_n_tokens(vocab)):
        attr = get_attr(vocab, i)
        if attr & mask:
            if not is_eog(vocab, i):
                ids.append(i)
        elif attr & user:
            text = llama_cpp.llama_vocab_get_text(vocab, i).decode("utf-8", "replace")
            if _MARKER.match(text):
                ids.append(i)
    return np.array(ids, dtype=np.intp)


def with_no_special(llama_cpp: Any, llm: Any, processors: Any) -> Any:
    """`processors` (a LogitsProcessorList or None) followed by NoSpecialTokens."""
    guard = getattr(llm, "_router_no_special", None)
    if guard is None:
        guard = NoSpecialTokens(special_token_ids(llama_cpp, llm.model))
        llm._router_no_special = guard
    chain = llama_cpp.LogitsProcessorList(list(processors or []))
    chain.append(guard)
    return chain


__all__ = ["NoSpecialTokens", "special_token_ids", "with_no_special"]

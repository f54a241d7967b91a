"""Cheap input-token estimates: no tokenizer on the decision path."""

from __future__ import annotations

from collections.abc import Sequence

from router.types import Message

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4  # role markers and separators in chat templates
TOKENS_PER_IMAGE = 85  # OpenAI's low-detail image cost; a floor for the estimate


def message_text(message: Message) -> tuple[str, int]:
    """The text of a message and the number of image parts in it."""
    content = message.get("content")
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    texts: list[str] = []
    images = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind in ("image_url", "image", "input_image"):
            images += 1
    return "\n".join(texts), images


def estimate_tokens(messages: Sequence[Message]) -> tuple[int, int]:
    """(estimated input tokens, image parts) for a list of messages."""
    chars = 0
    images = 0
    for m in messages:
        text, n = message_text(m)
        chars += len(text)
        images += n
    tokens = chars // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE * len(messages)
    return tokens + TOKENS_PER_IMAGE * images, images

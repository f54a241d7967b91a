"""A string that never shows itself: API keys live in `Secret`."""

from __future__ import annotations

import re
from collections.abc import Iterable


class Secret:
    """Holds a secret value; `str`, `repr` and formatting all print a mask."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value, for the one place that sends it (an adapter's call)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    def __str__(self) -> str:
        return "****"

    def __format__(self, spec: str) -> str:
        return "****"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (Secret, ("****",))  # never pickle the value


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret value found in `text` by a mask (for library messages)."""
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, "****")
    # Bearer tokens and sk- style keys that were not known to us.
    return _KEYLIKE.sub("****", text)


_KEYLIKE = re.compile(r"(?<![A-Za-z0-9])(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9_\-\.]{8,})")

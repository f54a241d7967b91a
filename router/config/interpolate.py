"""`${VAR}` and `${VAR:-default}` in config strings.

    ${VAR}            the variable's value; unset is an error (or, in a provider,
                      disables that provider); set-but-empty gives ""
    ${VAR:-default}   the value, or `default` when VAR is unset or empty (as in sh);
                      the default may be empty and is taken literally
    $${X}             a literal `${X}`

Only `${` starts a reference, so a lone `$` (a regex anchor, a price) is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)(\}?)")
_BODY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


@dataclass(slots=True)
class Interpolated:
    value: str
    missing: list[str] = field(default_factory=list)  # unset variables, in order
    errors: list[str] = field(default_factory=list)  # malformed references
    substituted: bool = False  # a variable's value or a default went in
    used: list[tuple[str, str]] = field(default_factory=list)  # (name, value) from environ


def needs_interpolation(text: str) -> bool:
    return "${" in text


def interpolate(text: str, environ: Mapping[str, str]) -> Interpolated:
    """Replace every reference in `text`; never raises, the caller reports."""
    out = Interpolated("")
    parts: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        parts.append(text[pos : m.start()])
        pos = m.end()
        if m.group(0) == "$${":
            parts.append("${")
            continue
        body, closed = m.group(1), m.group(2)
        # A lone `$` may sit in a default (`${PRICE:-$5}`); a `${` there is nesting.
        ref = _BODY.fullmatch(body) if closed and "${" not in body else None
        if ref is None:
            out.errors.append(_malformed(body))
            parts.append(m.group(0))
            continue
        name, default = ref.group(1), ref.group(2)
        value = environ.get(name)
        if default is not None and not value:
            value = default
        elif value is not None:
            out.used.append((name, value))
        if value is None:
            out.missing.append(name)
            continue
        out.substituted = True
        parts.append(value)
    parts.append(text[pos:])
    out.value = "".join(parts)
    return out


def _malformed(body: str) -> str:
    shown = body if len(body) <= 40 else body[:37] + "..."
    return (
        f"bad variable reference '${{{shown}': expected ${{NAME}} or ${{NAME:-default}} "
        "(nesting is not supported; write $${ for a literal ${)"
    )

"""A string that never shows itself: API keys live in `Secret`."""

from __future__ import annotations

import logging
import re
import threading
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
    # Credentials in URLs, Bearer tokens and sk- style keys that were not known to us.
    return _KEYLIKE.sub("****", mask_urls(text))


_KEYLIKE = re.compile(r"(?<![A-Za-z0-9])(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9_\-\.]{8,})")


# -- credentials inside URLs and header names ------------------------------------------------

# Header and query-parameter names that carry credentials: Authorization, Cookie,
# Proxy-Authorization, X-Api-Key, access_token, client_secret, sig, ...
_SENSITIVE_NAME = re.compile(
    r"(?i)key|token|secret|auth|cookie|passw|pwd|session|credential|signature|^sig$"
)
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]+")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#\s]*)@")
_QUERY_PARAM = re.compile(r"([?&;])([^=&;#\s]+)=([^&;#\s]*)")


def is_sensitive_name(name: str) -> bool:
    """Whether a header or query parameter named so carries a credential."""
    return _SENSITIVE_NAME.search(name) is not None


def mask_url(url: str) -> str:
    """`url` with its userinfo and credential-like query values replaced by a mask."""
    if "://" not in url:
        return url
    masked = _USERINFO.sub(r"\1****@", url, count=1)
    if "?" in masked:
        head, sep, query = masked.partition("?")
        masked = head + sep + _QUERY_PARAM.sub(_mask_param, "?" + query)[1:]
    return masked


def _mask_param(m: re.Match[str]) -> str:
    if m.group(3) and is_sensitive_name(m.group(2)):
        return f"{m.group(1)}{m.group(2)}=****"
    return m.group(0)


def url_secrets(url: str | None) -> list[str]:
    """The values `mask_url` hides in `url` (userinfo, its password, credential query values)."""
    if not url or "://" not in url:
        return []
    found: list[str] = []
    m = _USERINFO.match(url)
    if m and m.group(2):
        found.append(m.group(2))
        user, _, password = m.group(2).partition(":")
        found.extend(v for v in (password, user) if len(v) >= 4)
    _, _, query = url.partition("?")
    for p in _QUERY_PARAM.finditer("?" + query):
        if p.group(3) and is_sensitive_name(p.group(2)):
            found.append(p.group(3))
    return found


def mask_urls(text: str) -> str:
    """Every URL in free text masked (`mask_url`)."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: mask_url(m.group(0)), text)


class MaskedURL(str):
    """An endpoint that may hold credentials (userinfo, `?key=`): a plain `str` to the
    client that connects to it, masked in its repr, so a printed config never shows it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(mask_url(str.__str__(self)))


# -- client library logs ---------------------------------------------------------------------

# The HTTP clients under the adapters log each request's URL at INFO (httpx, httpx2) and
# the request options, headers included, at DEBUG (openai). Records of their loggers pass
# through a filter that masks URLs and every secret value an adapter registered. A filter
# on a logger sees only records logged on that very logger, so each existing logger whose
# name starts with one of these prefixes gets it.
CLIENT_LOGGER_PREFIXES = ("httpx", "httpcore", "openai", "litellm", "LiteLLM", "anthropic")
_known: set[str] = set()
_guard_lock = threading.Lock()
_filtered: set[str] = set()


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with URLs and known secret values masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's to report
            return True
        masked = redact(mask_urls(message), tuple(_known))
        if masked != message:
            record.msg, record.args = masked, None
        return True


_FILTER = RedactingFilter()


def guard_client_logs(secrets: Iterable[str] = ()) -> None:
    """Filter the client libraries' loggers (those that exist now) and learn `secrets`."""
    with _guard_lock:
        _known.update(s for s in secrets if s and len(s) >= 4)
        names = [*CLIENT_LOGGER_PREFIXES, *logging.Logger.manager.loggerDict]
        for name in names:
            if name not in _filtered and name.startswith(CLIENT_LOGGER_PREFIXES):
                _filtered.add(name)
                logging.getLogger(name).addFilter(_FILTER)

"""The one error tree of the router.

    RouterError
    ├── ConfigError            file, line, column, JSON pointer; may hold several issues
    ├── NoRouteError           carries the Decision trace
    │   └── UnknownModel       (also a NotFound) `model=` names no model and no provider
    ├── BudgetExceeded
    ├── MissingDependency      names the extra to install
    ├── RequestError           the caller's mistake: no prompt, bad messages, a template
    │   │                      that cannot render this request; never retried
    │   └── NotFound           a pinned model or forced rule the config does not have
    └── ProviderError          provider, model, retryable
        ├── Timeout
        ├── RateLimited        retry_after (seconds)
        ├── Unavailable        5xx, connection refused, unknown failure
        ├── AuthError          401/403: disables the provider
        └── BadRequest         the provider refused the request (its 400)
            └── ContextOverflow    the prompt does not fit the model's window

Library exceptions never leak: adapters translate them into these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.types import Attempt, Decision


class RouterError(Exception):
    """Base of every error the router raises."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config: where it is and what is wrong."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    pointer: str = ""  # key path, e.g. rules[2].targets[0]

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        path = f"{self.pointer}: " if self.pointer else ""
        return f"{where}{path}{self.message}"


class ConfigError(RouterError):
    """A config that cannot be used. All issues found are reported at once."""

    def __init__(self, issues: Sequence[ConfigIssue] | str, **where: Any) -> None:
        if isinstance(issues, str):
            issues = [ConfigIssue(issues, **where)]
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        first = self.issues[0] if self.issues else ConfigIssue("invalid config")
        self.file = first.file
        self.line = first.line
        self.column = first.column
        self.pointer = first.pointer
        super().__init__("\n".join(str(i) for i in self.issues))


class NoRouteError(RouterError):
    """No rule could serve the request; `decision` says why, rule by rule.

    When candidates were tried and all failed, `attempts` lists each failure.
    """

    def __init__(
        self,
        message: str,
        decision: Decision | None = None,
        attempts: Sequence[Attempt] = (),
    ) -> None:
        super().__init__(message)
        self.decision = decision
        self.attempts: tuple[Attempt, ...] = tuple(attempts)


class BudgetExceeded(RouterError):
    """A budget is spent and the rule says `on_budget: error`."""

    def __init__(self, message: str, decision: Decision | None = None) -> None:
        super().__init__(message)
        self.decision = decision


class MissingDependency(RouterError):
    """An optional library is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed: pip install 'llm-router[{extra}]'")
        self.package = package
        self.extra = extra


class RequestError(RouterError):
    """The request itself is wrong, before any provider saw it: fix the call, not the
    config or the provider."""


class NotFound(RequestError):
    """`model=` or `rule=` names nothing in the config; `what` is "model" or "rule"."""

    def __init__(self, what: str, name: str, known: Sequence[str] = ()) -> None:
        listed = ", ".join(sorted(known)[:20])
        super().__init__(f"unknown {what} '{name}'" + (f" (known: {listed})" if listed else ""))
        self.what = what
        self.name = name


class UnknownModel(NotFound, NoRouteError):
    """`model=` names neither a configured model nor `<provider>/<model id>` with a
    configured provider. The caller's mistake (a `NotFound`: 404 `model_not_found` on the
    server) and a `NoRouteError` whose decision rejects the name with the kind
    `RejectionKind.UNKNOWN_MODEL`."""

    def __init__(self, name: str, message: str, decision: Decision | None = None) -> None:
        NoRouteError.__init__(self, message, decision)
        self.what = "model"
        self.name = name


class ProviderError(RouterError):
    """A provider failed to serve one attempt."""

    retryable: bool = False
    kind: str = "error"

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status: int | None = None,
        partial: bool = False,
        endpoint: str | None = None,
        hint: str | None = None,
        unreachable: bool = False,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status = status
        # True when a stream failed after yielding text: the caller got part of an answer.
        self.partial = partial
        self.endpoint = endpoint  # host:port the call went to, when known
        self.hint = hint  # what to check, in words, where one is known
        # Nothing listens there (connection refused, no such host): trying again at once
        # cannot help, so the candidate is marked down and the next one tried.
        self.unreachable = unreachable

    def describe(self) -> str:
        """One line for people: endpoint, status, the provider's own words, a hint."""
        where = f"{self.endpoint}: " if self.endpoint else ""
        said = str(self)
        status = ""
        if self.status and not self.unreachable and f"HTTP {self.status}" not in said:
            status = f"HTTP {self.status}: "
        hint = f" ({self.hint})" if self.hint else ""
        partial = "; the output above is incomplete" if self.partial else ""
        return f"{where}{status}{said}{hint}{partial}"


class Timeout(ProviderError):
    retryable = True
    kind = "timeout"


class RateLimited(ProviderError):
    retryable = True
    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Unavailable(ProviderError):
    retryable = True
    kind = "unavailable"


class AuthError(ProviderError):
    kind = "auth"


class BadRequest(ProviderError):
    kind = "bad_request"


class ContextOverflow(BadRequest):
    kind = "context_overflow"


def unexpected(exc: BaseException, doing: str) -> RouterError:
    """`exc` as a RouterError: itself if it is one, else one that says what happened.

    The last line of defence for exceptions nothing nearer turned into words (a bug, a
    library's surprise): callers see the tree, and the cause stays chained for debugging.
    """
    if isinstance(exc, RouterError):
        return exc
    from router.secrets import redact

    detail = redact(str(exc), ())
    detail = detail if len(detail) <= 500 else detail[:500] + "..."
    return RouterError(f"{doing} failed: {type(exc).__name__}: {detail or 'no details'}")


__all__ = [
    "AuthError",
    "BadRequest",
    "BudgetExceeded",
    "ConfigError",
    "ConfigIssue",
    "ContextOverflow",
    "MissingDependency",
    "NoRouteError",
    "NotFound",
    "ProviderError",
    "RateLimited",
    "RequestError",
    "RouterError",
    "Timeout",
    "Unavailable",
    "UnknownModel",
    "unexpected",
]

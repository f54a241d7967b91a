"""Values that cross the router's pieces: requests, decisions, results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]  # OpenAI shape: {"role": ..., "content": str | [parts]}


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the engine sees it; built once by the runtime."""

    messages: tuple[Message, ...]
    text: str  # all message text joined: what `matches`/`contains` look at
    use_case: str | None = None
    tags: frozenset[str] = frozenset()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)  # normalised
    tokens: int = 0  # estimated input tokens
    max_tokens: int = 0  # output tokens asked for (or the config's default)
    needs: frozenset[str] = frozenset()  # tools / vision / json
    tools: tuple[Mapping[str, Any], ...] | None = None
    response_format: Mapping[str, Any] | None = None
    stream: bool = False
    # `model=`: a configured model's name, or "<provider>/<the provider's model id>".
    model: str | None = None
    rule: str | None = None  # `rule=`: this rule serves, whatever its `when:` says


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False  # True: the provider sent no counts; these are estimates

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """What happened to one rule while routing a request."""

    rule: str
    matched: bool
    candidates: tuple[str, ...] = ()  # survivors, in the strategy's order
    rejected: Mapping[str, str] = field(default_factory=dict)  # model -> reason
    strategy: str = "ordered"
    note: str = ""  # why a matched rule did not serve, or why it did not match


@dataclass(frozen=True, slots=True)
class Decision:
    """The routing decision and its full trace; `explain()` returns it."""

    rule: str | None
    model: str | None
    provider: str | None
    candidates: tuple[str, ...]
    rejected: Mapping[str, str]
    rules: tuple[RuleTrace, ...]
    use_case: str | None = None
    tokens: int = 0
    max_tokens: int = 0
    config_version: int = 0
    unpriced: tuple[str, ...] = ()  # candidates whose price is unknown

    def price_note(self, model: str) -> str:
        return " (price unknown)" if model in self.unpriced else ""

    @property
    def served(self) -> bool:
        return self.model is not None

    def describe(self) -> str:
        """A readable account of the decision, one line per rule tried."""
        lines = [
            f"request: use_case={self.use_case or '-'} est_tokens={self.tokens} "
            f"max_tokens={self.max_tokens} config_version={self.config_version}"
        ]
        for t in self.rules:
            if not t.matched:
                lines.append(f"  rule {t.rule}: no match{' (' + t.note + ')' if t.note else ''}")
                continue
            lines.append(f"  rule {t.rule}: matched, strategy {t.strategy}")
            for i, m in enumerate(t.candidates, 1):
                lines.append(f"    {i}. {m}{self.price_note(m)}")
            for m, why in t.rejected.items():
                lines.append(f"    x  {m}: {why}")
            if t.note:
                lines.append(f"    -> {t.note}")
        if self.served:
            lines.append(f"chosen: {self.model} via {self.provider} (rule {self.rule})")
        else:
            lines.append("chosen: none")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One failed try at one model."""

    model: str
    provider: str
    error: str  # error kind: timeout, rate_limited, unavailable, auth, bad_request, ...
    message: str
    duration_s: float


@dataclass(frozen=True, slots=True)
class Result:
    text: str
    model: str
    provider: str
    usage: Usage
    cost_usd: float | None  # None: the model's price is unknown (never taken as $0)
    latency_s: float
    decision: Decision
    attempts: tuple[Attempt, ...] = ()
    rule: str | None = None
    finish_reason: str | None = None
    tool_calls: tuple[Mapping[str, Any], ...] | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a streamed answer; the last one carries the whole `result`."""

    text: str
    model: str
    result: Result | None = None

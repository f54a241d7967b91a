"""Values that cross the router's pieces: requests, decisions, results."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Mapping, Sequence
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
    model: str | None = None  # pinned: only this model serves (no rule is matched)
    rule: str | None = None  # forced: this rule serves, whatever its `when:` says
    key: str | None = None  # who asked (an API key's name): spend is recorded under it


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False  # True: the provider sent no counts; these are estimates

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class RejectionKind(enum.Enum):
    """Why a candidate was left out, as a value code can act on."""

    CONTEXT = "context"  # prompt + max_tokens do not fit the model's window
    CAPABILITY = "capability"  # the request needs tools / vision / json the model lacks
    DISABLED = "disabled"  # the provider is off: no key, `enabled: false`, an auth error
    CIRCUIT = "circuit"  # the model's breaker is open or probing
    HELD = "held"  # the provider asked us to come back later (Retry-After)
    BUDGET = "budget"  # a budget that applies is spent
    RATE_LIMIT = "rate_limit"  # the model's rpm/tpm is used up
    COST = "cost"  # the estimate is over the rule's max_cost
    PRICE = "price"  # the price is unknown, and max_cost or a budget needs one
    UNKNOWN_MODEL = "unknown_model"  # model= names no configured model or provider
    OTHER = "other"  # a reason from a RoutingState that gave no kind


class Rejection(str):
    """Why one model was not tried: a `kind` to act on and the text people read.

    It is the text (a `str`), so traces print and compare as they always did, and code
    decides by `kind`, never by the wording:

        Rejection(RejectionKind.BUDGET, "budget spent: global daily $5.00 (spent $5.01)")
    """

    kind: RejectionKind

    def __new__(cls, kind: RejectionKind, text: str) -> Rejection:
        self = super().__new__(cls, text)
        self.kind = kind
        return self

    @property
    def text(self) -> str:
        return str.__str__(self)

    def prefixed(self, prefix: str) -> Rejection:
        """The same rejection, its text under `prefix` (e.g. the rule it came from)."""
        return Rejection(self.kind, prefix + self.text)

    def __repr__(self) -> str:
        return f"Rejection({self.kind.name}, {self.text!r})"

    def __reduce__(self) -> tuple[type[Rejection], tuple[RejectionKind, str]]:
        return (Rejection, (self.kind, self.text))


def as_rejection(why: str, kind: RejectionKind = RejectionKind.OTHER) -> Rejection:
    """`why` as a Rejection; one already typed keeps its kind."""
    return why if isinstance(why, Rejection) else Rejection(kind, why)


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """What happened to one rule while routing a request."""

    rule: str
    matched: bool
    candidates: tuple[str, ...] = ()  # survivors, in the strategy's order
    rejected: Mapping[str, Rejection] = field(default_factory=dict)  # model -> why not
    strategy: str = "ordered"
    note: str = ""  # why a matched rule did not serve or did not match; a spill-over


@dataclass(frozen=True, slots=True)
class Decision:
    """The routing decision and its full trace; `explain()` returns it."""

    rule: str | None
    model: str | None
    provider: str | None
    candidates: tuple[str, ...]
    rejected: Mapping[str, Rejection]
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

    def describe(self, *, table: bool = False) -> str:
        """A readable account of the decision, one line per rule tried.

        `table=True`: the same account in aligned columns (what `router explain` prints).
        """
        if table:
            return self._table()
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

    def _table(self) -> str:
        lines = [
            f"use case: {self.use_case or '-'}   est. input tokens: {self.tokens}   "
            f"max output: {self.max_tokens}   config version: {self.config_version}",
            "",
            f"{'rule':<24} {'result':<10} detail",
            f"{'-' * 24} {'-' * 10} {'-' * 40}",
        ]
        for t in self.rules:
            if not t.matched:
                lines.append(f"{t.rule:<24} {'no match':<10}")
                continue
            status = "serves" if t.rule == self.rule else "skipped"
            lines.append(f"{t.rule:<24} {status:<10} strategy {t.strategy}")
            for i, m in enumerate(t.candidates, 1):
                lines.append(f"{'':<24} {'':<10} {i}. {m}{self.price_note(m)}")
            for m, why in t.rejected.items():
                lines.append(f"{'':<24} {'':<10} x {m}: {why}")
            if t.note:
                lines.append(f"{'':<24} {'':<10} -> {t.note}")
        lines.append("")
        if self.served:
            lines.append(f"chosen: {self.model} (provider {self.provider}, rule {self.rule})")
        else:
            lines.append("chosen: none: no rule can serve this request")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The decision and its trace as plain data (rejections as their text)."""
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


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
    cached: bool = False  # served from the response cache: no call made, cost 0


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a streamed answer; the last one carries the whole `result`."""

    text: str
    model: str
    result: Result | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """`Router.embed()`'s answer: one vector per text, in order, and what it cost."""

    vectors: tuple[tuple[float, ...], ...]
    model: str
    provider: str
    usage: Usage
    cost_usd: float | None  # None: the model's price is unknown (never taken as $0)
    latency_s: float
    decision: Decision | None  # None when the caller named the model
    attempts: tuple[Attempt, ...] = ()
    rule: str | None = None


# -- what status(), models() and usage() return ---------------------------------------


class Record(Mapping[str, Any]):
    """Base of the frozen views below: fields as attributes, `to_dict()` for JSON, and
    read-only `view["field"]` for code written against the dicts they replace.

    Subclasses are dataclasses with `eq=False`: they compare as mappings do (to a dict
    with the same items too), and like dicts they are not hashable.
    """

    __slots__ = ()

    def _keys(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self))  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        if key in self._keys():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists and scalars: what `json.dumps` takes."""
        return {k: plain(self[k]) for k in self}


def plain(value: Any) -> Any:
    """`value` with every Record, mapping and sequence turned into dicts and lists."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str):
        return str(value)  # a Rejection as its text
    return value


@dataclass(frozen=True, slots=True, eq=False)  # equal as mappings, to dicts too
class ModelInfo(Record):
    """One row of `Router.models()`: a configured model, or one a provider reported."""

    name: str  # "-" for a model a provider lists that the config does not name
    provider: str
    id: str  # the provider's own id
    context: int | None
    enabled: bool
    note: str  # why disabled, "discovered", or "listing failed: ..."
    cost: tuple[float, float] | None  # USD per 1M tokens: input, output


@dataclass(frozen=True, slots=True, eq=False)  # equal as mappings, to dicts too
class UsageRow(Record):
    """One row of `Router.usage()`: the group (its `by` columns) and its totals.

    `row["model"]` reads a group column, as the rows' dicts did.
    """

    group: Mapping[str, str]  # by-column -> value, e.g. {"day": "2024-03-10", "model": "x"}
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cache_hits: int = 0  # of `requests`, how many the response cache served (at $0)
    unpriced_requests: int = 0  # requests of models whose price is unknown: not in cost_usd

    def _keys(self) -> tuple[str, ...]:
        return (
            *self.group,
            "requests",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "cache_hits",
            "unpriced_requests",
        )

    def __getitem__(self, key: str) -> Any:
        if key in self.group:
            return self.group[key]
        if key == "group":
            raise KeyError(key)
        return Record.__getitem__(self, key)


@dataclass(frozen=True, slots=True, eq=False)  # equal as mappings, to dicts too
class WatcherHealth(Record):
    """The config watcher's threads: alive or not, and how often they were restarted."""

    state: str  # running | stopped | new
    worker_alive: bool
    observer_alive: bool
    restarts: int
    last_crash: str | None
    last_crash_at: float | None


@dataclass(frozen=True, slots=True, eq=False)  # equal as mappings, to dicts too
class ProviderInfo(Record):
    """A provider as the serving config has it."""

    type: str
    enabled: bool
    disabled_reason: str | None


@dataclass(frozen=True, slots=True, eq=False)  # equal as mappings, to dicts too
class ProviderState(Record):
    """A provider as serving found it: an auth error can disable it at run time."""

    enabled: bool
    disabled_reason: str | None


@dataclass(frozen=True, slots=True, eq=False)  # equal as mappings, to dicts too
class ModelState(Record):
    """What serving has learned of one model."""

    provider: str
    held: str | None  # why it is held back (a provider's Retry-After), while it is
    breaker: Record  # the circuit breaker's `BreakerState`
    in_flight: int
    latency_ms: float | None  # moving average, None before any call
    rate_limit: Mapping[str, Mapping[str, float]] | None  # rpm/tpm: limit, available
    free: bool  # never held back by a budget
    rate_limit_waits: tuple[int, float] = (0, 0.0)  # requests that waited, seconds slept


@dataclass(frozen=True, slots=True, eq=False)  # equal as mappings, to dicts too
class BudgetStatus(Record):
    scope: str  # global | model | rule
    name: str | None
    period: str  # day | month
    limit_usd: float
    spent_usd: float
    reserved_usd: float  # estimates held by requests in flight
    remaining_usd: float
    exhausted: bool
    resets_at: str  # ISO 8601, UTC


@dataclass(frozen=True, slots=True, eq=False)  # equal as mappings, to dicts too
class SpendTotals(Record):
    today_usd: float
    month_usd: float


@dataclass(frozen=True, slots=True, eq=False)  # equal as mappings, to dicts too
class LiveStatus(Record):
    """`LiveState.status()`: breakers, holds, rate limits, budgets and spend."""

    models: Mapping[str, ModelState]
    providers: Mapping[str, ProviderState]
    budgets: tuple[BudgetStatus, ...]
    spend: SpendTotals | None  # None once the state is closed
    usage_db: str
    # Where live state is kept: {"backend": "memory"}, or the Redis link's health
    # (url with the password masked, connected, down_since, error, pending_writes).
    shared_state: Mapping[str, Any] = field(default_factory=lambda: {"backend": "memory"})


@dataclass(frozen=True, slots=True, eq=False)  # equal as mappings, to dicts too
class RouterStatus(Record):
    """`Router.status()`: the config serving, the last reload error, the live state."""

    config_version: int
    loaded_at: float
    sha256: str
    files: tuple[str, ...]
    last_error: str | None
    last_error_at: float | None
    watching: bool
    providers: Mapping[str, ProviderInfo]
    state: LiveStatus
    watcher: WatcherHealth | None = None  # None when not watching
    # Router.health()'s last row per provider (probed providers only): "enabled" alone
    # says nothing of a server that is down.
    health: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # add_provider()/add_model()/remove_*(): names added and removed, by section
    runtime_changes: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)
    # The response cache's backend and its health (Redis: connected, outages); None: no cache
    cache: Mapping[str, Any] | None = None

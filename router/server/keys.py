"""Who may call the server: API keys, what each may use, its rate and its spend.

Keys come from the config's `server.keys` and follow reloads. A presented key is
compared with every configured one in constant time (digests of equal length, no
early exit), so timing tells nothing about how much of a key was right. Spend per
key is kept by the router's usage store (`router usage --by key`); this module
only keeps running totals, seeded from the store at start, to refuse a key whose
budget is spent without a query per request.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from router import ApiKey, Config
from router.server.errors import ApiError, retry_after

Clock = Callable[[], float]
# Router.usage(by, since): rows readable as mappings (`row["key"]`, `row["cost_usd"]`).
UsageReader = Callable[[tuple[str, ...], float], Sequence[Mapping[str, Any]]]


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def period_start(period: str, now: float) -> float:
    """The start of the UTC day or month holding `now`, as the usage store counts them."""
    t = datetime.fromtimestamp(now, tz=timezone.utc)
    t = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        t = t.replace(day=1)
    return t.timestamp()


def _period_end(period: str, now: float) -> float:
    start = datetime.fromtimestamp(period_start(period, now), tz=timezone.utc)
    if period == "day":
        return start.timestamp() + 86400.0
    nxt = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return nxt.timestamp()


class KeyRing:
    """The configured keys of one config, by digest."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self.keys = tuple(keys)
        self._digests = tuple((_digest(k.key.reveal()), k) for k in self.keys)

    @property
    def required(self) -> bool:
        return bool(self.keys)

    def authenticate(self, authorization: str | None, api_key_header: str | None) -> ApiKey | None:
        """The key a request presents (`Authorization: Bearer`, or `api-key`); None when
        the server has no keys. Raises a 401 ApiError otherwise."""
        if not self.keys:
            return None
        presented = None
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                presented = token.strip()
        if presented is None and api_key_header:
            presented = api_key_header.strip()
        if not presented:
            raise ApiError(
                401,
                "missing API key: send 'Authorization: Bearer <key>'",
                code="invalid_api_key",
            )
        want = _digest(presented)
        found: ApiKey | None = None
        for digest, key in self._digests:  # no early exit: every key is compared
            if hmac.compare_digest(digest, want):
                found = key
        if found is None:
            raise ApiError(401, "invalid API key", code="invalid_api_key")
        return found


def check_allowed(key: ApiKey | None, model: str | None, rule: str | None) -> None:
    """403 when the key may not use this model or rule (None: not known yet)."""
    if key is None:
        return
    if rule is not None and key.rules is not None and rule not in key.rules:
        allowed = ", ".join(sorted(key.rules)) or "none"
        raise ApiError(
            403,
            f"key '{key.name}' may not use rule '{rule}' (allowed: {allowed})",
            "permission_error",
            "rule_not_allowed",
            "model",
        )
    if model is not None and key.models is not None and model not in key.models:
        allowed = ", ".join(sorted(key.models)) or "none"
        raise ApiError(
            403,
            f"key '{key.name}' may not use model '{model}' (allowed: {allowed})",
            "permission_error",
            "model_not_allowed",
            "model",
        )


class RequestRate:
    """Requests per minute per key: a sliding window of start times."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: ApiKey) -> None:
        if key.rpm is None:
            return
        now = self._clock()
        with self._lock:
            window = self._seen.setdefault(key.name, deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= key.rpm:
                wait = window[0] + 60.0 - now
                raise ApiError(
                    429,
                    f"key '{key.name}' is over its rate limit of {key.rpm} requests per minute",
                    "rate_limit_error",
                    "rate_limit_exceeded",
                    None,
                    retry_after(wait),
                )
            window.append(now)


class KeySpend:
    """Running USD totals per key name for the current UTC day and month.

    A request on a model whose price is unknown adds nothing to the dollars (its cost is
    not $0, it is not known) and is counted apart, as `router usage` counts it.
    """

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # name -> {period: (period start, spent, requests of unknown price)}
        self._spent: dict[str, dict[str, tuple[float, float, int]]] = {}

    def seed(self, read: UsageReader) -> None:
        """Totals so far this month and day, from the usage store."""
        now = self._clock()
        month, day = period_start("month", now), period_start("day", now)
        today = datetime.fromtimestamp(day, tz=timezone.utc).strftime("%Y-%m-%d")
        rows = read(("key", "day"), month)
        with self._lock:
            for row in rows:
                name, cost = str(row["key"]), float(row["cost_usd"])
                unpriced = int(row.get("unpriced_requests", 0) or 0)
                if name == "-":
                    continue
                periods = self._spent.setdefault(
                    name, {"day": (day, 0.0, 0), "month": (month, 0.0, 0)}
                )
                for period, start in (("month", month), ("day", day)):
                    if period == "day" and str(row["day"]) != today:
                        continue
                    _, spent, n = periods[period]
                    periods[period] = (start, spent + cost, n + unpriced)

    def add(self, name: str, cost: float | None) -> None:
        """Count one served request; `cost` None: its price is unknown."""
        if cost is not None and cost <= 0:
            return
        now = self._clock()
        with self._lock:
            periods = self._spent.setdefault(name, {})
            for period in ("day", "month"):
                start = period_start(period, now)
                was_start, spent, n = periods.get(period, (start, 0.0, 0))
                if was_start != start:
                    spent, n = 0.0, 0
                periods[period] = (start, spent + (cost or 0.0), n + (cost is None))

    def _period(self, name: str, period: str) -> tuple[float, int]:
        now = self._clock()
        with self._lock:
            start, spent, n = self._spent.get(name, {}).get(period, (0.0, 0.0, 0))
        return (spent, n) if start == period_start(period, now) else (0.0, 0)

    def spent(self, name: str, period: str) -> float:
        return self._period(name, period)[0]

    def unpriced(self, name: str, period: str) -> int:
        """Requests this period whose price is unknown: not in `spent`."""
        return self._period(name, period)[1]

    def check(self, key: ApiKey) -> None:
        """429 when the key's daily or monthly budget is spent."""
        for period, limit in (("day", key.daily), ("month", key.monthly)):
            if limit is None:
                continue
            spent = self.spent(key.name, period)
            if spent >= limit:
                now = self._clock()
                word = "daily" if period == "day" else "monthly"
                raise ApiError(
                    429,
                    f"key '{key.name}' has spent its {word} budget: ${spent:.4f} of ${limit:.2f}",
                    "insufficient_quota",
                    "budget_exceeded",
                    None,
                    retry_after(_period_end(period, now) - now),
                )

    def snapshot(self) -> Mapping[str, Mapping[str, float]]:
        """{key: {day, month: USD; unpriced_day, unpriced_month: requests of unknown price}}."""
        return {
            name: {
                "day": self.spent(name, "day"),
                "month": self.spent(name, "month"),
                "unpriced_day": self.unpriced(name, "day"),
                "unpriced_month": self.unpriced(name, "month"),
            }
            for name in list(self._spent)
        }


class Gate:
    """Keys of the config in use, rebuilt when a reload changes it."""

    def __init__(self, config: Config, clock: Clock = time.monotonic) -> None:
        self._config = config
        self.ring = KeyRing(config.server.keys)
        self.rate = RequestRate(clock)
        self.spend = KeySpend()

    def follow(self, config: Config) -> KeyRing:
        if config is not self._config:
            self._config = config
            self.ring = KeyRing(config.server.keys)
        return self.ring

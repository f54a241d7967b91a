"""Where spend is kept: one row per served request.

`UsageStore` is the interface; `SQLiteUsageStore` keeps rows in a file (the default,
so nothing is lost on restart) and `MemoryUsageStore` keeps them for one process.
A shared store (Redis, Postgres) can implement the same protocol later.

Days and months are UTC calendar periods, so every process and every report agrees
on when a daily budget starts again.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from router.config.model import Config

from router.errors import RouterError

PERIODS = ("day", "month")
SCOPES = ("global", "rule", "model")
GROUPS = ("day", "month", "model", "rule", "provider", "key")


@dataclass(frozen=True, slots=True)
class UsageRecord:
    ts: float  # epoch seconds
    model: str
    provider: str
    rule: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float  # 0 when the price is unknown: see price_known
    config_sha: str = ""
    cached: bool = False  # served from the response cache: cost 0, counted as a hit
    price_known: bool = True
    key: str | None = None  # the name of the API key that asked (the server's keys)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One line of a usage report: the group's keys and its totals."""

    key: tuple[str, ...]  # values of the `by` columns, in order
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    cache_hits: int = 0  # of `requests`, how many the response cache served
    unpriced: int = 0  # requests of models whose price is unknown: not in cost_usd


def period_bounds(period: str, now: float) -> tuple[float, float]:
    """[start, end) of the UTC day or month holding `now`, as epoch seconds."""
    t = datetime.fromtimestamp(now, tz=timezone.utc)
    if period == "day":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        end_ts = start.timestamp() + 86400.0
        return start.timestamp(), end_ts
    if period == "month":
        start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else (start.replace(month=start.month + 1))
        )
        return start.timestamp(), nxt.timestamp()
    raise ValueError(f"unknown period {period!r}; expected one of {PERIODS}")


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


def _check_scope(scope: str, name: str | None) -> None:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; expected one of {SCOPES}")
    if scope != "global" and not name:
        raise ValueError(f"scope {scope!r} needs a name")


@runtime_checkable
class UsageStore(Protocol):
    def record(self, rec: UsageRecord) -> None:
        """Keep one served request. Must be safe from many threads."""
        ...

    def spent(self, scope: str, name: str | None, period: str, now: float) -> float:
        """USD spent in the period holding `now`: all (global), one rule, or one model."""
        ...

    def rows(
        self, by: tuple[str, ...] = ("day", "model", "rule"), since: float | None = None
    ) -> list[UsageRow]:
        """Totals grouped by `by` (day, month, model, rule, provider), sorted by key."""
        ...

    def close(self) -> None: ...


class MemoryUsageStore:
    """Rows in a list: for tests and for configs with no `usage_db`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[UsageRecord] = []

    def record(self, rec: UsageRecord) -> None:
        with self._lock:
            self._records.append(rec)

    def spent(self, scope: str, name: str | None, period: str, now: float) -> float:
        _check_scope(scope, name)
        start, end = period_bounds(period, now)
        with self._lock:
            recs = list(self._records)
        return sum(
            r.cost_usd
            for r in recs
            if start <= r.ts < end
            and (
                scope == "global"
                or (scope == "model" and r.model == name)
                or (scope == "rule" and r.rule == name)
            )
        )

    def rows(
        self, by: tuple[str, ...] = ("day", "model", "rule"), since: float | None = None
    ) -> list[UsageRow]:
        _check_groups(by)
        with self._lock:
            recs = list(self._records)
        acc: dict[tuple[str, ...], list[float]] = {}
        for r in recs:
            if since is not None and r.ts < since:
                continue
            key = tuple(_group_value(r, g) for g in by)
            a = acc.setdefault(key, [0, 0, 0, 0.0, 0, 0])
            a[0] += 1
            a[1] += r.input_tokens
            a[2] += r.output_tokens
            a[3] += r.cost_usd
            a[4] += r.cached
            a[5] += not r.price_known
        return [
            UsageRow(k, int(v[0]), int(v[1]), int(v[2]), v[3], int(v[4]), int(v[5]))
            for k, v in sorted(acc.items())
        ]

    def close(self) -> None:
        pass


def _check_groups(by: Iterable[str]) -> None:
    for g in by:
        if g not in GROUPS:
            raise ValueError(f"cannot group usage by {g!r}; expected some of {GROUPS}")


def _group_value(r: UsageRecord, group: str) -> str:
    if group == "day":
        return _day(r.ts)
    if group == "month":
        return _day(r.ts)[:7]
    value = {"model": r.model, "rule": r.rule, "provider": r.provider, "key": r.key}[group]
    return value or "-"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    day TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    rule TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    config_sha TEXT NOT NULL DEFAULT '',
    cached INTEGER NOT NULL DEFAULT 0,
    price_known INTEGER NOT NULL DEFAULT 1,
    key TEXT
);
CREATE INDEX IF NOT EXISTS usage_ts ON usage (ts);
CREATE TABLE IF NOT EXISTS reservations (
    id INTEGER PRIMARY KEY,
    expires REAL NOT NULL,
    model TEXT NOT NULL,
    rule TEXT,
    amount REAL NOT NULL
);
"""

# A reservation of a process that died is forgotten after this long.
RESERVATION_TTL = 600.0

BudgetCheck = tuple[str, "str | None", str, float]  # scope, name, period, limit

# Column expressions a report may group by; fixed strings, never user text, in the SQL.
_GROUP_SQL = {
    "day": "day",
    "month": "substr(day, 1, 7)",
    "model": "model",
    "rule": "coalesce(rule, '-')",
    "provider": "provider",
    "key": "coalesce(key, '-')",
}


class SQLiteUsageStore:
    """Spend in a SQLite file (WAL), shared by every thread of the process.

    One connection behind a lock: writes are serialised by SQLite anyway and a lock
    is cheaper than a connection per thread that must be closed when the thread ends.
    Other processes may open the same file; WAL lets them read while one writes.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            if self.path != ":memory:":
                self.path = os.path.abspath(os.path.expanduser(self.path))
                _refuse_special(self.path)
                parent = os.path.dirname(self.path)
                if parent:
                    os.makedirs(parent, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=10.0
            )
            with self._lock:
                conn = self._conn
                conn.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode survives a crash of this process; only power loss may
                # take the last transactions, which is the right trade for a spend log.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
                columns = {row[1] for row in conn.execute("PRAGMA table_info(usage)")}
                if "cached" not in columns:  # a store written before the response cache
                    conn.execute("ALTER TABLE usage ADD COLUMN cached INTEGER NOT NULL DEFAULT 0")
                if "price_known" not in columns:  # written before prices could be unknown
                    conn.execute(
                        "ALTER TABLE usage ADD COLUMN price_known INTEGER NOT NULL DEFAULT 1"
                    )
                if "key" not in columns:  # a file written before spend was kept per key
                    conn.execute("ALTER TABLE usage ADD COLUMN key TEXT")
        except (sqlite3.Error, OSError) as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            raise UsageStoreError(f"usage store {self.path}: {_words(exc)}") from None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"usage store {self.path} is closed")
        return self._conn

    def record(self, rec: UsageRecord) -> None:
        with self._lock:
            self._db().execute(
                "INSERT INTO usage (ts, day, model, provider, rule, input_tokens,"
                " output_tokens, cost_usd, config_sha, cached, price_known, key)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.ts,
                    _day(rec.ts),
                    rec.model,
                    rec.provider,
                    rec.rule,
                    rec.input_tokens,
                    rec.output_tokens,
                    rec.cost_usd,
                    rec.config_sha,
                    int(rec.cached),
                    int(rec.price_known),
                    rec.key,
                ),
            )

    def spent(self, scope: str, name: str | None, period: str, now: float) -> float:
        _check_scope(scope, name)
        start, end = period_bounds(period, now)
        sql = "SELECT coalesce(sum(cost_usd), 0) FROM usage WHERE ts >= ? AND ts < ?"
        args: tuple[object, ...] = (start, end)
        if scope == "model":
            sql += " AND model = ?"
            args += (name,)
        elif scope == "rule":
            sql += " AND rule = ?"
            args += (name,)
        with self._lock, _sql_errors(self.path):
            (value,) = self._db().execute(sql, args).fetchone()
        return float(value)

    def rows(
        self, by: tuple[str, ...] = ("day", "model", "rule"), since: float | None = None
    ) -> list[UsageRow]:
        _check_groups(by)
        cols = [_GROUP_SQL[g] for g in by]
        select = ", ".join(cols) + ", " if cols else ""
        sql = (
            f"SELECT {select}count(*), coalesce(sum(input_tokens), 0),"
            " coalesce(sum(output_tokens), 0), coalesce(sum(cost_usd), 0),"
            " coalesce(sum(cached), 0), coalesce(sum(1 - price_known), 0) FROM usage"
        )
        args: tuple[object, ...] = ()
        if since is not None:
            sql += " WHERE ts >= ?"
            args = (since,)
        if cols:
            order = ", ".join(str(i + 1) for i in range(len(cols)))
            sql += f" GROUP BY {order} ORDER BY {order}"
        with self._lock, _sql_errors(self.path):
            fetched = self._db().execute(sql, args).fetchall()
        n = len(cols)
        out = []
        for row in fetched:
            if not n and not row[n]:
                continue  # no rows at all
            out.append(
                UsageRow(
                    tuple(str(v) for v in row[:n]),
                    int(row[n]),
                    int(row[n + 1]),
                    int(row[n + 2]),
                    float(row[n + 3]),
                    int(row[n + 4]),
                    int(row[n + 5]),
                )
            )
        return out

    # -- budgets shared by the processes that use this file ------------------------

    shares_budgets = True

    def reserve_budget(
        self,
        checks: Iterable[BudgetCheck],
        model: str,
        rule: str | None,
        amount: float,
        now: float,
    ) -> tuple[int | None, dict[tuple[str, str | None, str], float]]:
        """Hold `amount` against every budget in `checks` for all processes at once.

        One `BEGIN IMMEDIATE` transaction (one writer at a time, across processes)
        reads each budget's spend in its period plus the live reservations, and adds
        this one only if every budget has room left. So processes overshoot a budget
        by at most one request, as threads do. Returns the reservation's id (None if
        a budget is spent) and the spend read per budget.
        """
        spent: dict[tuple[str, str | None, str], float] = {}
        with self._lock, _sql_errors(self.path):
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM reservations WHERE expires < ?", (now,))
                for scope, name, period, limit in checks:
                    start, end = period_bounds(period, now)
                    where, args = _scope_filter(scope, name)
                    (used,) = db.execute(
                        f"SELECT coalesce(sum(cost_usd), 0) FROM usage WHERE ts >= ? AND ts < ?"
                        f"{where}",
                        (start, end, *args),
                    ).fetchone()
                    (held,) = db.execute(
                        "SELECT coalesce(sum(amount), 0) FROM reservations WHERE 1 = 1" + where,
                        args,
                    ).fetchone()
                    spent[(scope, name, period)] = float(used)
                    if float(used) + float(held) >= limit:
                        db.execute("COMMIT")
                        return None, spent
                cursor = db.execute(
                    "INSERT INTO reservations (expires, model, rule, amount) VALUES (?, ?, ?, ?)",
                    (now + RESERVATION_TTL, model, rule, amount),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return cursor.lastrowid, spent

    def unreserve(self, reservation_id: int) -> None:
        """Drop a reservation: its spend is recorded, or nothing was spent."""
        with self._lock, _sql_errors(self.path):
            self._db().execute("DELETE FROM reservations WHERE id = ?", (reservation_id,))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"<SQLiteUsageStore {self.path!r}>"


def _scope_filter(scope: str, name: str | None) -> tuple[str, tuple[object, ...]]:
    if scope == "model":
        return " AND model = ?", (name,)
    if scope == "rule":
        return " AND rule = ?", (name,)
    return "", ()


class UsageStoreError(RouterError):
    """The usage store cannot be opened or read; the message names the file."""


def _refuse_special(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise UsageStoreError(f"usage store {path}: is a directory, not a SQLite file")
    if not stat.S_ISREG(mode):
        raise UsageStoreError(f"usage store {path}: not a regular file (a device or a FIFO)")


def _words(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        return f"not a SQLite database ({text})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return text


@contextlib.contextmanager
def _sql_errors(path: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise UsageStoreError(f"usage store {path}: {_words(exc)}") from None


def open_store(path: str | None) -> UsageStore:
    """The store a config asks for: a SQLite file, or memory for ":memory:" (or none)."""
    if path and path != ":memory:":
        return SQLiteUsageStore(path)
    return MemoryUsageStore()


def default_usage_path() -> str:
    """Where spend is kept when the config names no `usage_db`: $ROUTER_USAGE_DB, else
    $XDG_STATE_HOME/router/usage.sqlite (~/.local/state/router/usage.sqlite)."""
    env = os.environ.get("ROUTER_USAGE_DB")
    if env:
        return env
    state = os.environ.get("XDG_STATE_HOME") or os.path.join("~", ".local", "state")
    return os.path.join(os.path.expanduser(state), "router", "usage.sqlite")


def usage_path(config: Config) -> str:
    """`settings.usage_db`, relative to the directory of the config's first file;
    SQLite at `default_usage_path()` when unset; ":memory:" keeps spend in memory."""
    path = config.settings.usage_db or default_usage_path()
    if path == ":memory:":
        return path
    path = os.path.expanduser(path)
    if not os.path.isabs(path) and config.files:
        path = os.path.join(os.path.dirname(config.files[0]), path)
    return os.path.abspath(path)


__all__ = [
    "GROUPS",
    "PERIODS",
    "SCOPES",
    "MemoryUsageStore",
    "SQLiteUsageStore",
    "UsageRecord",
    "UsageRow",
    "UsageStore",
    "default_usage_path",
    "open_store",
    "period_bounds",
    "usage_path",
]

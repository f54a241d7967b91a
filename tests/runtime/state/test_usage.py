"""Usage stores: spend per period and scope, reports, and a file that survives restarts."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from router.runtime.state.usage import (
    MemoryUsageStore,
    SQLiteUsageStore,
    UsageRecord,
    UsageStore,
    open_store,
    period_bounds,
)
from tests.threads import run_threads


def ts(y: int, m: int, d: int, h: int = 12) -> float:
    return datetime(y, m, d, h, tzinfo=timezone.utc).timestamp()


def rec(t: float, model: str = "gpt", rule: str | None = "chat", cost: float = 1.0) -> UsageRecord:
    return UsageRecord(t, model, "openai", rule, 10, 5, cost, "sha")


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> UsageStore:
    s: UsageStore = (
        MemoryUsageStore() if request.param == "memory" else SQLiteUsageStore(tmp_path / "u.db")
    )
    yield s  # type: ignore[misc]
    s.close()


def test_period_bounds_utc() -> None:
    start, end = period_bounds("day", ts(2024, 3, 10, 23))
    assert start == ts(2024, 3, 10, 0) and end == ts(2024, 3, 11, 0)
    start, end = period_bounds("month", ts(2024, 12, 31))
    assert start == ts(2024, 12, 1, 0) and end == ts(2025, 1, 1, 0)
    with pytest.raises(ValueError):
        period_bounds("week", 0)


def test_spent_by_scope_and_period(store: UsageStore) -> None:
    store.record(rec(ts(2024, 3, 10), "gpt", "chat", 1.0))
    store.record(rec(ts(2024, 3, 10), "claude", "code", 2.0))
    store.record(rec(ts(2024, 3, 9), "gpt", "code", 4.0))
    store.record(rec(ts(2024, 2, 28), "gpt", "chat", 8.0))
    now = ts(2024, 3, 10, 18)
    assert store.spent("global", None, "day", now) == 3.0
    assert store.spent("global", None, "month", now) == 7.0
    assert store.spent("model", "gpt", "day", now) == 1.0
    assert store.spent("model", "gpt", "month", now) == 5.0
    assert store.spent("rule", "code", "month", now) == 6.0
    assert store.spent("rule", "nope", "month", now) == 0.0
    with pytest.raises(ValueError):
        store.spent("team", "x", "day", now)
    with pytest.raises(ValueError):
        store.spent("model", None, "day", now)


def test_rows_group_by_day_model_rule(store: UsageStore) -> None:
    store.record(rec(ts(2024, 3, 10), "gpt", "chat", 1.0))
    store.record(rec(ts(2024, 3, 10, 13), "gpt", "chat", 0.5))
    store.record(rec(ts(2024, 3, 10), "local", None, 0.0))
    store.record(rec(ts(2024, 3, 11), "gpt", "chat", 2.0))
    rows = store.rows()
    assert [(r.key, r.requests, r.cost_usd) for r in rows] == [
        (("2024-03-10", "gpt", "chat"), 2, 1.5),
        (("2024-03-10", "local", "-"), 1, 0.0),
        (("2024-03-11", "gpt", "chat"), 1, 2.0),
    ]
    assert rows[0].input_tokens == 20 and rows[0].output_tokens == 10
    by_model = store.rows(by=("model",))
    assert [(r.key, r.cost_usd) for r in by_model] == [(("gpt",), 3.5), (("local",), 0.0)]
    assert [r.key for r in store.rows(by=("month",))] == [("2024-03",)]
    assert [r.key for r in store.rows(by=("day",), since=ts(2024, 3, 11, 0))] == [("2024-03-11",)]
    total = store.rows(by=())
    assert len(total) == 1 and total[0].requests == 4
    with pytest.raises(ValueError):
        store.rows(by=("colour",))


def test_empty_store_reports_nothing(store: UsageStore) -> None:
    assert store.rows() == []
    assert store.rows(by=()) == []
    assert store.spent("global", None, "day", ts(2024, 1, 1)) == 0.0


def test_sqlite_spend_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "usage.db"
    s = SQLiteUsageStore(path)
    s.record(rec(ts(2024, 3, 10), cost=1.25))
    s.close()
    again = SQLiteUsageStore(path)
    try:
        assert again.spent("global", None, "day", ts(2024, 3, 10)) == 1.25
        assert again.rows()[0].key == ("2024-03-10", "gpt", "chat")
    finally:
        again.close()


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    s = SQLiteUsageStore(tmp_path / "u.db")
    try:
        (mode,) = s._db().execute("PRAGMA journal_mode").fetchone()
        assert mode == "wal"
    finally:
        s.close()


def test_sqlite_closed_store_refuses(tmp_path: Path) -> None:
    s = SQLiteUsageStore(tmp_path / "u.db")
    s.close()
    s.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        s.record(rec(ts(2024, 1, 1)))


def test_sqlite_two_handles_on_one_file_see_each_other(tmp_path: Path) -> None:
    a = SQLiteUsageStore(tmp_path / "u.db")
    b = SQLiteUsageStore(tmp_path / "u.db")
    try:
        a.record(rec(ts(2024, 3, 10), cost=2.0))
        assert b.spent("global", None, "day", ts(2024, 3, 10)) == 2.0
    finally:
        a.close()
        b.close()


def test_concurrent_writers_lose_nothing(store: UsageStore) -> None:
    t0 = ts(2024, 3, 10)

    def worker(i: int) -> None:
        for _ in range(50):
            store.record(rec(t0, model=f"m{i % 4}", cost=0.01))

    run_threads(worker, [(i,) for i in range(16)])
    assert store.rows(by=())[0].requests == 800
    assert store.spent("global", None, "day", t0) == pytest.approx(8.0)


def test_open_store_picks_by_path(tmp_path: Path) -> None:
    assert isinstance(open_store(None), MemoryUsageStore)
    s = open_store(str(tmp_path / "x.db"))
    assert isinstance(s, SQLiteUsageStore)
    assert isinstance(s, UsageStore)
    s.close()


def test_rows_group_by_the_key_that_asked(store: UsageStore) -> None:
    store.record(UsageRecord(ts(2026, 3, 1), "gpt", "openai", "chat", 1, 1, 1.0, "", key="alice"))
    store.record(UsageRecord(ts(2026, 3, 1), "gpt", "openai", "chat", 1, 1, 2.0, "", key="alice"))
    store.record(rec(ts(2026, 3, 1), cost=4.0))
    rows = {r.key: (r.requests, r.cost_usd) for r in store.rows(("key",))}
    assert rows == {("alice",): (2, 3.0), ("-",): (1, 4.0)}


def test_sqlite_file_from_before_keys_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE usage (id INTEGER PRIMARY KEY, ts REAL NOT NULL, day TEXT NOT NULL,"
            " model TEXT NOT NULL, provider TEXT NOT NULL, rule TEXT, input_tokens INTEGER"
            " NOT NULL, output_tokens INTEGER NOT NULL, cost_usd REAL NOT NULL,"
            " config_sha TEXT NOT NULL DEFAULT '')"
        )
        conn.execute(
            "INSERT INTO usage (ts, day, model, provider, rule, input_tokens, output_tokens,"
            " cost_usd) VALUES (?, '2026-03-01', 'gpt', 'openai', 'chat', 1, 1, 0.5)",
            (ts(2026, 3, 1),),
        )
    store = SQLiteUsageStore(path)
    store.record(UsageRecord(ts(2026, 3, 1), "gpt", "openai", "chat", 1, 1, 1.0, "", key="bob"))
    rows = {r.key: r.cost_usd for r in store.rows(("key",))}
    store.close()
    assert rows == {("-",): 0.5, ("bob",): 1.0}

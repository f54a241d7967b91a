"""Hot reload through the Router: real files under tmp_path, real watchdog events."""

from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from router import Router
from router.providers.mock import MockProvider
from router.runtime.reload.changes import ReloadEvent

WAIT = 15.0  # generous deadlines on a shared machine; nothing here asserts speed


def config_text(
    gen: int,
    *,
    coding: tuple[str, ...] | None = None,
    extra_providers: str = "",
    extra_models: str = "",
    extra_rules: str = "",
    tests: bool = True,
) -> str:
    """A config whose every name carries its generation, so a decision tells its config."""
    targets = ", ".join(coding or (f"m{gen}",))
    text = f"""\
providers:
  echo: {{type: mock}}
{extra_providers}models:
  m{gen}: {{provider: echo, model: echo-{gen}}}
  spare: {{provider: echo, model: spare}}
{extra_models}rules:
  - name: coding-{gen}
    when: {{use_case: coding}}
    targets: [{targets}]
{extra_rules}  - name: default-{gen}
    targets: [m{gen}]
"""
    if tests:
        text += f"""\
tests:
  - {{prompt: "fn main", use_case: coding, expect: {{rule: coding-{gen}}}}}
"""
    return text


class Reloads:
    """Collects on_reload events; waits for one that matches."""

    def __init__(self, router: Router) -> None:
        self.events: list[ReloadEvent] = []
        self._cond = threading.Condition()
        router.on_reload(self._on)

    def _on(self, event: ReloadEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait(self, pred: Callable[[ReloadEvent], bool], timeout: float = WAIT) -> ReloadEvent:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching reload; got {self.events!r}")
                self._cond.wait(left)

    def wait_version(self, version: int) -> ReloadEvent:
        return self.wait(lambda e: e.ok and e.version == version)

    def wait_failure(self) -> ReloadEvent:
        return self.wait(lambda e: not e.ok)


def serving_rule(router: Router) -> str | None:
    return router.explain("fn main", use_case="coding").rule


def wait_until(pred: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.fixture
def open_router() -> Iterator[Callable[..., Router]]:
    made: list[Router] = []

    def make(path: Path, **kw: Any) -> Router:
        kw.setdefault("watch", True)
        kw.setdefault("debounce_ms", 50)
        r = Router.from_config(path, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


# -- each way a file really changes --------------------------------------------------------


def edit_in_place(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def edit_rename_over(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def edit_vim(path: Path, text: str) -> None:
    backup = path.with_name(path.name + "~")
    os.rename(path, backup)
    path.write_text(text)
    backup.unlink()


def edit_delete_recreate(path: Path, text: str) -> None:
    path.unlink()
    time.sleep(0.2)  # long enough for a reload attempt to see the file missing
    path.write_text(text)


EDITS = {
    "in_place": edit_in_place,
    "rename_over": edit_rename_over,
    "vim": edit_vim,
    "delete_recreate": edit_delete_recreate,
}


@pytest.mark.parametrize("style", list(EDITS))
def test_edit_style_reloads(tmp_path: Path, open_router: Callable[..., Router], style: str) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config_text(1))
    router = open_router(path)
    reloads = Reloads(router)
    assert serving_rule(router) == "coding-1"

    EDITS[style](path, config_text(2))
    event = reloads.wait_version(2)
    assert serving_rule(router) == "coding-2"
    assert router.status()["config_version"] == 2
    assert router.status()["last_error"] is None
    assert event.changes is not None
    assert "rule coding-2 added" in event.changes.describe()
    assert "rule coding-1 removed" in event.changes.describe()

    EDITS[style](path, config_text(3))  # and again: the watch survived the first edit
    reloads.wait_version(3)
    assert serving_rule(router) == "coding-3"


def test_new_file_in_a_config_directory(tmp_path: Path, open_router: Callable[..., Router]) -> None:
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "10-base.yaml").write_text(config_text(1, tests=False))
    router = open_router(conf)
    reloads = Reloads(router)
    assert serving_rule(router) == "coding-1"
    (conf / "20-tests.yaml").write_text(
        'tests:\n  - {prompt: "hello", expect: {rule: default-1}}\n'
    )
    event = reloads.wait_version(2)
    assert event.ok
    assert len(router.config.tests) == 1
    assert str(conf / "20-tests.yaml") in {str(Path(f)) for f in router.status()["files"]}


def _configmap_version(root: Path, stamp: str, text: str) -> None:
    data = root / f"..{stamp}"
    data.mkdir()
    (data / "router.yaml").write_text(text)


def test_kubernetes_configmap_swap(tmp_path: Path, open_router: Callable[..., Router]) -> None:
    root = tmp_path / "configmap"
    root.mkdir()
    _configmap_version(root, "2024_01_01_00_00_00.1", config_text(1))
    os.symlink("..2024_01_01_00_00_00.1", root / "..data")
    os.symlink("..data/router.yaml", root / "router.yaml")
    router = open_router(root / "router.yaml")
    reloads = Reloads(router)
    assert serving_rule(router) == "coding-1"

    for gen in (2, 3):
        old = os.readlink(root / "..data")
        stamp = f"2024_01_01_00_0{gen}_00.{gen}"
        _configmap_version(root, stamp, config_text(gen))
        os.symlink(f"..{stamp}", root / "..data_tmp")
        os.replace(root / "..data_tmp", root / "..data")
        shutil.rmtree(root / old)
        reloads.wait_version(gen)
        assert serving_rule(router) == f"coding-{gen}"


# -- bad edits leave the old config serving ------------------------------------------------

BAD_EDITS = {
    # name: (text, what the error must mention)
    "invalid_yaml": (config_text(2) + "rules: [unclosed\n", ""),
    "schema_error": (config_text(2).replace("targets: [m2]\n", "targets: 42\n", 1), "targets"),
    "failing_test": (
        config_text(2).replace("expect: {rule: coding-2}", "expect: {rule: default-2}"),
        "routing test",
    ),
    "bad_template": (
        config_text(2).replace(
            "    targets: [m2]\n", "    targets: [m2]\n    system: 'Hi {{ name '\n", 1
        ),
        "template",
    ),
    "unknown_model": (config_text(2).replace("targets: [m2]", "targets: [nope]", 1), "nope"),
}


@pytest.mark.parametrize("kind", list(BAD_EDITS))
def test_bad_edit_keeps_old_config(
    tmp_path: Path,
    open_router: Callable[..., Router],
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config_text(1))
    router = open_router(path)
    reloads = Reloads(router)
    before = router.status()
    served = router.route("fn main", use_case="coding")
    provider = router.snapshot.provider("echo")

    text, mention = BAD_EDITS[kind]
    with caplog.at_level(logging.ERROR, logger="router.reload"):
        path.write_text(text)
        event = reloads.wait_failure()
        assert not event.ok and event.changes is None
        assert event.version == 1
        # Still serving version 1, the same providers, the same answers.
        status = router.status()
        assert status["config_version"] == 1
        assert status["sha256"] == before["sha256"]
        assert router.snapshot.provider("echo") is provider
        again = router.route("fn main", use_case="coding")
        assert (again.rule, again.model, again.text) == (served.rule, served.model, served.text)
        # The error names the file and the line, and is kept.
        error = status["last_error"]
        assert error is not None and error == event.error
        assert f"{path.name}:" in error
        line = error.split(f"{path.name}:", 1)[1].split(":", 1)[0]
        assert line.isdigit() and int(line) >= 1
        assert mention.lower() in error.lower()
        # A second attempt on the same bad file is not logged again.
        router.reload()
    logged = [r for r in caplog.records if r.name == "router.reload" and r.levelno >= logging.ERROR]
    assert len(logged) == 1, [r.getMessage() for r in logged]

    path.write_text(config_text(3))
    reloads.wait_version(2)
    assert serving_rule(router) == "coding-3"
    assert router.status()["last_error"] is None


# -- providers across reloads -------------------------------------------------------------------


def test_provider_carried_over_keeps_identity_and_removed_one_closes_when_idle(
    tmp_path: Path, open_router: Callable[..., Router], monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []
    original_close = MockProvider.close

    def recording_close(self: MockProvider) -> None:
        closed.append(self.name)
        original_close(self)

    monkeypatch.setattr(MockProvider, "close", recording_close)
    slow = "  slow: {type: mock, delay: 1.0}\n  tuned: {type: mock, reply: one}\n"
    slow_models = "  s: {provider: slow, model: s}\n  t: {provider: tuned, model: t}\n"
    slow_rule = "  - name: slow\n    when: {use_case: slow}\n    targets: [s]\n"
    path = tmp_path / "router.yaml"
    path.write_text(
        config_text(1, extra_providers=slow, extra_models=slow_models, extra_rules=slow_rule)
    )
    router = open_router(path, watch=False)
    echo = router.snapshot.provider("echo")
    tuned = router.snapshot.provider("tuned")
    assert router.route("x", use_case="coding").provider == "echo"

    # A request in flight on `slow` while a reload removes it.
    result: dict[str, Any] = {}
    started = threading.Event()

    def slow_request() -> None:
        started.set()
        result["res"] = router.route("take your time", use_case="slow")

    worker = threading.Thread(target=slow_request)
    worker.start()
    started.wait(WAIT)
    wait_until(lambda: "slow" in router.snapshot.loaded_providers())
    path.write_text(
        config_text(
            2,
            extra_providers="  tuned: {type: mock, reply: two}\n",
            extra_models="  t: {provider: tuned, model: t}\n",
        )
    )
    event = router.reload()
    assert event.ok and event.version == 2
    assert event.changes is not None
    assert "provider slow removed" in event.changes.describe()
    assert "provider tuned changed (settings.reply)" in event.changes.describe()
    assert router.snapshot.provider("echo") is echo  # settings unchanged: carried over
    assert router.snapshot.provider("tuned") is not tuned  # settings changed: a new one
    assert "slow" not in closed  # its last request is still running
    worker.join(WAIT)
    assert result["res"].provider == "slow"  # the request finished on the old config
    wait_until(lambda: "slow" in closed)
    assert "tuned" in closed
    assert "echo" not in closed


def test_reload_that_does_not_serve_leaves_providers_to_the_serving_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []
    original_close = MockProvider.close

    def recording_close(self: MockProvider) -> None:
        closed.append(self.name)
        original_close(self)

    monkeypatch.setattr(MockProvider, "close", recording_close)
    path = tmp_path / "router.yaml"
    path.write_text(config_text(1))
    router = Router.from_config(path)
    try:
        echo = router.snapshot.provider("echo")
        # Nothing changed: the provider in use is neither closed nor replaced.
        event = router.reload()
        assert event.ok and event.version == 1
        assert closed == []
        assert router.snapshot.provider("echo") is echo
        # A routing test fails: nothing swaps, and version 1 still owns its provider...
        path.write_text(config_text(1).replace("{rule: coding-1}", "{rule: nope}"))
        assert not router.reload().ok
        # ...so it closes it once a later config changes that provider's settings.
        path.write_text(
            config_text(2).replace("echo: {type: mock}", "echo: {type: mock, reply: hi}")
        )
        event = router.reload()
        assert event.ok and event.version == 2
        assert router.snapshot.provider("echo") is not echo
        assert closed == ["echo"]
    finally:
        router.close()


def test_on_reload_reports_routing_changes(
    tmp_path: Path, open_router: Callable[..., Router]
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config_text(1, coding=("spare", "m1")).replace("coding-1", "coding"))
    router = open_router(path)
    reloads = Reloads(router)
    path.write_text(config_text(1, coding=("m1",)).replace("coding-1", "coding"))
    event = reloads.wait_version(2)
    assert event.changes is not None
    assert event.changes.describe() == ["rule coding: targets spare, m1 -> m1"]
    status = router.status()
    assert status["config_version"] == 2
    assert len(status["sha256"]) == 64 and status["sha256"] == event.sha256
    assert status["loaded_at"] == pytest.approx(event.loaded_at, abs=5)


def test_close_stops_the_watcher(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config_text(1))
    before = set(threading.enumerate())
    router = Router.from_config(path, watch=True, debounce_ms=20)
    watcher = router._watcher
    assert watcher is not None and watcher.running
    started = [t for t in threading.enumerate() if t not in before]
    assert started and all(t.daemon for t in started)
    router.close()
    wait_until(lambda: not any(t.is_alive() for t in started))
    path.write_text(config_text(2))
    time.sleep(0.3)
    assert router.status()["config_version"] == 1


# -- concurrency: routing never sees half a config ------------------------------------------------

BAD_TEXTS = [text for text, _ in BAD_EDITS.values()]


def test_routing_during_200_reloads(tmp_path: Path, open_router: Callable[..., Router]) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config_text(0))
    # The watcher runs too, so reloads come from two threads at once.
    router = open_router(path, watch=True, debounce_ms=5)
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[tuple[int, str | None, str | None, str]] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        use_case = "coding" if n % 2 else None
        local: list[tuple[int, str | None, str | None, str]] = []
        while not stop.is_set():
            try:
                res = router.route(f"request {n}", use_case=use_case)
            except BaseException as exc:  # any failure is a test failure
                errors.append(exc)
                return
            d = res.decision
            local.append((d.config_version, d.rule, d.model, res.text))
        with lock:
            seen.extend(local)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    rng = random.Random(7)
    ok = failed = 0
    gen = 0
    try:
        for _ in range(200):
            if rng.random() < 0.4:
                path.write_text(rng.choice(BAD_TEXTS))
            else:
                gen += 1
                path.write_text(config_text(gen))
            event = router.reload()
            ok += event.ok
            failed += not event.ok
    finally:
        stop.set()
        for t in threads:
            t.join(WAIT)
    assert not errors, errors[:3]
    assert ok > 50 and failed > 50
    assert len(seen) > 200

    gen_of_version: dict[int, int] = {}
    version_of_gen: dict[int, int] = {}
    for version, rule, model, text in seen:
        assert rule is not None and model is not None
        # Rule and model come from one generation of the config ...
        rule_gen = int(rule.rsplit("-", 1)[1])
        assert model == f"m{rule_gen}", (rule, model)
        assert text.startswith(f"[echo-{rule_gen}]"), text
        # ... and that generation is the one config version the decision names.
        assert gen_of_version.setdefault(version, rule_gen) == rule_gen
        assert version_of_gen.setdefault(rule_gen, version) == version
    assert len(gen_of_version) > 10  # routing really ran across many versions


# -- `router watch` ------------------------------------------------------------------------------


def test_router_watch_cli_prints_each_reload(tmp_path: Path) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config_text(1, coding=("spare", "m1")).replace("coding-1", "coding"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "router", "watch", str(path), "--debounce-ms", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    got = threading.Condition()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with got:
                lines.append(line.rstrip("\n"))
                got.notify_all()

    def wait_line(pred: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + WAIT
        with got:
            while True:
                for line in lines:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                assert left > 0, f"no such line in {lines!r}"
                got.wait(left)

    threading.Thread(target=pump, daemon=True).start()
    try:
        wait_line(lambda s: s.startswith("watching"))
        path.write_text(config_text(1, coding=("m1",)).replace("coding-1", "coding"))
        wait_line(lambda s: "rule coding: targets spare, m1 -> m1" in s)
        path.write_text("rules: [unclosed\n")
        wait_line(lambda s: "failed" in s)
        wait_line(lambda s: f"{path.name}:" in s)
    finally:
        proc.terminate()
        proc.wait(WAIT)

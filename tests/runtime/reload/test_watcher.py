"""ConfigWatcher against real files and real watchdog events (no mocked observer)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from router.runtime.reload.watcher import ConfigWatcher, config_files, fingerprint

WAIT = 10.0  # generous: the machine is shared; we poll, never assert on speed
QUIET = 0.6  # how long "nothing more happens" is watched for


class Recorder:
    """A callback that counts calls and remembers what the file said at each."""

    def __init__(self, read: Path | None = None, action: Callable[[], None] | None = None) -> None:
        self.calls = 0
        self.seen: list[str] = []
        self.read = read
        self.action = action
        self._cond = threading.Condition()

    def __call__(self) -> None:
        text = self.read.read_text() if self.read is not None and self.read.exists() else ""
        with self._cond:
            self.calls += 1
            self.seen.append(text)
            self._cond.notify_all()
        if self.action is not None:
            self.action()

    def wait_for(self, n: int, timeout: float = WAIT) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.calls < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def stays_at(self, n: int, quiet: float = QUIET) -> bool:
        """True if the count is n now and still n after `quiet` seconds."""
        time.sleep(quiet)
        return self.calls == n


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("rules: [one]\n")
    return path


@pytest.fixture
def watch() -> Iterator[Callable[..., ConfigWatcher]]:
    started: list[ConfigWatcher] = []

    def make(paths: list[Path], cb: Callable[[], None], **kw: object) -> ConfigWatcher:
        kw.setdefault("debounce", 0.05)
        w = ConfigWatcher(paths, cb, **kw).start()  # type: ignore[arg-type]
        started.append(w)
        return w

    yield make
    for w in started:
        w.stop()


# -- the edit styles ---------------------------------------------------------------------


def test_write_in_place(config: Path, watch: Callable[..., ConfigWatcher]) -> None:
    rec = Recorder(read=config)
    watch([config], rec)
    with open(config, "w") as f:  # truncate + write + close, like VS Code's default save
        f.write("rules: [two]\n")
    assert rec.wait_for(1)
    assert rec.seen[-1] == "rules: [two]\n"
    assert rec.stays_at(1)


def test_temp_file_renamed_over(config: Path, watch: Callable[..., ConfigWatcher]) -> None:
    rec = Recorder(read=config)
    watch([config], rec)
    tmp = config.parent / ".config.yaml.tmp.1234"
    tmp.write_text("rules: [renamed]\n")
    os.replace(tmp, config)  # atomic save: VS Code files.atomicSave, most tools
    assert rec.wait_for(1)
    assert rec.seen[-1] == "rules: [renamed]\n"
    assert rec.stays_at(1)


def test_vim_backup_then_write_new_file(config: Path, watch: Callable[..., ConfigWatcher]) -> None:
    """vim (backupcopy=no): rename to config.yaml~, write a new file, drop the backup."""
    rec = Recorder(read=config)
    w = watch([config], rec)
    backup = config.parent / "config.yaml~"
    os.rename(config, backup)
    (config.parent / "4913").write_text("")  # vim's probe file
    (config.parent / "4913").unlink()
    config.write_text("rules: [vim]\n")
    backup.unlink()
    assert rec.wait_for(1)
    assert rec.seen[-1] == "rules: [vim]\n"
    # After the rename the watcher still follows the *name*: a second save is seen too.
    config.write_text("rules: [vim, again]\n")
    assert rec.wait_for(2)
    assert rec.seen[-1] == "rules: [vim, again]\n"
    assert w.running


def test_delete_then_recreate(config: Path, watch: Callable[..., ConfigWatcher]) -> None:
    rec = Recorder(read=config)
    watch([config], rec)
    config.unlink()
    assert rec.wait_for(1)  # the file is gone: that is a change too (the reload will fail)
    assert rec.seen[-1] == ""
    config.write_text("rules: [recreated]\n")
    assert rec.wait_for(2)
    assert rec.seen[-1] == "rules: [recreated]\n"


def test_delete_and_recreate_within_one_burst(
    config: Path, watch: Callable[..., ConfigWatcher]
) -> None:
    rec = Recorder(read=config)
    watch([config], rec, debounce=0.3)
    config.unlink()
    config.write_text("rules: [quick]\n")
    assert rec.wait_for(1)
    assert rec.seen == ["rules: [quick]\n"]
    assert rec.stays_at(1)


def test_new_yaml_file_in_watched_directory(
    tmp_path: Path, watch: Callable[..., ConfigWatcher]
) -> None:
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "base.yaml").write_text("a: 1\n")
    rec = Recorder()
    watch([conf], rec)
    (conf / "notes.txt").write_text("not config\n")
    (conf / ".base.yaml.swp").write_text("editor swap\n")
    assert rec.stays_at(0)
    (conf / "extra.yml").write_text("b: 2\n")
    assert rec.wait_for(1)
    assert rec.stays_at(1)
    (conf / "extra.yml").unlink()
    assert rec.wait_for(2)


def test_file_outside_the_config_is_ignored(
    config: Path, watch: Callable[..., ConfigWatcher]
) -> None:
    rec = Recorder()
    watch([config], rec)
    (config.parent / "other.yaml").write_text("x: 1\n")  # a sibling, but not a config file
    assert rec.stays_at(0)


def _configmap(root: Path, stamp: str, text: str) -> Path:
    data = root / f"..{stamp}"
    data.mkdir()
    (data / "config.yaml").write_text(text)
    return data


def _configmap_update(root: Path, stamp: str, text: str) -> None:
    """What the kubelet does: new dir, ..data_tmp -> it, rename over ..data, drop old dir."""
    old = os.readlink(root / "..data")
    _configmap(root, stamp, text)
    os.symlink(f"..{stamp}", root / "..data_tmp")
    os.replace(root / "..data_tmp", root / "..data")
    shutil.rmtree(root / old)


@pytest.mark.parametrize("give", ["file", "dir"])
def test_kubernetes_configmap_symlink_swap(
    tmp_path: Path, watch: Callable[..., ConfigWatcher], give: str
) -> None:
    root = tmp_path / "mount"
    root.mkdir()
    _configmap(root, "2024_01_01_00_00_00.1", "rules: [v1]\n")
    os.symlink("..2024_01_01_00_00_00.1", root / "..data")
    os.symlink("..data/config.yaml", root / "config.yaml")
    config = root / "config.yaml"
    rec = Recorder(read=config)
    watch([config if give == "file" else root], rec)

    _configmap_update(root, "2024_01_01_00_01_00.2", "rules: [v2]\n")
    assert rec.wait_for(1)
    assert rec.seen[-1] == "rules: [v2]\n"
    # And again: the watch is on the directory, so the next swap is seen as well.
    _configmap_update(root, "2024_01_01_00_02_00.3", "rules: [v3]\n")
    assert rec.wait_for(2)
    assert rec.seen[-1] == "rules: [v3]\n"


def test_burst_of_writes_gives_one_callback(
    config: Path, watch: Callable[..., ConfigWatcher]
) -> None:
    rec = Recorder(read=config)
    # A long debounce so a slow, shared machine cannot split the burst in two.
    watch([config], rec, debounce=0.5)
    for i in range(20):
        config.write_text(f"rules: [n{i}]\n")
        time.sleep(0.005)
    assert rec.wait_for(1)
    assert rec.stays_at(1, quiet=1.0)
    assert rec.seen == ["rules: [n19]\n"]


# -- content check -------------------------------------------------------------------------


def test_same_content_written_again_is_not_a_change(
    config: Path, watch: Callable[..., ConfigWatcher]
) -> None:
    rec = Recorder()
    w = watch([config], rec)
    config.write_text(config.read_text())
    os.utime(config)
    assert rec.stays_at(0)
    assert w.events_seen >= 1  # the events did arrive; the content check skipped them


def test_content_check_can_be_turned_off(config: Path, watch: Callable[..., ConfigWatcher]) -> None:
    rec = Recorder()
    watch([config], rec, check_content=False)
    config.write_text(config.read_text())
    assert rec.wait_for(1)


def test_poll_interval_catches_a_change_without_events(
    config: Path, watch: Callable[..., ConfigWatcher]
) -> None:
    rec = Recorder(read=config)
    w = watch([config], rec, poll_interval=0.1)
    assert w._observer is not None
    w._observer.unschedule_all()  # as if inotify had lost the change
    config.write_text("rules: [missed]\n")
    assert rec.wait_for(1)
    assert rec.seen[-1] == "rules: [missed]\n"
    assert rec.stays_at(1)  # polling again finds nothing new


def test_polling_observer(config: Path, watch: Callable[..., ConfigWatcher]) -> None:
    rec = Recorder(read=config)
    watch([config], rec, polling=True, poll_interval=0.2)
    time.sleep(0.05)
    config.write_text("rules: [polled, and longer]\n")
    assert rec.wait_for(1)
    assert rec.seen[-1] == "rules: [polled, and longer]\n"


def test_fingerprint(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "b.yaml").write_text("b: 1\n")
    (conf / "a.yml").write_text("a: 1\n")
    (conf / "readme.md").write_text("ignored\n")
    first = fingerprint([conf])
    assert len(first) == 64
    assert fingerprint([conf]) == first
    assert config_files([conf]) == [str(conf / "a.yml"), str(conf / "b.yaml")]
    (conf / "readme.md").write_text("still ignored\n")
    assert fingerprint([conf]) == first
    (conf / "a.yml").write_text("a: 2\n")
    second = fingerprint([conf])
    assert second != first
    (conf / "c.yaml").write_text("")
    assert fingerprint([conf]) != second
    missing = tmp_path / "missing.yaml"
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert fingerprint([missing]) != fingerprint([empty])


# -- threads, errors, lifecycle ---------------------------------------------------------------


def test_callback_exception_is_logged_and_watching_goes_on(
    config: Path, watch: Callable[..., ConfigWatcher], caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("bad reload")

    rec = Recorder(read=config, action=boom)
    w = watch([config], rec)
    with caplog.at_level(logging.ERROR, logger="router.reload"):
        config.write_text("rules: [first]\n")
        assert rec.wait_for(1)
        config.write_text("rules: [second]\n")
        assert rec.wait_for(2)

        def errors() -> list[logging.LogRecord]:
            return [r for r in caplog.records if r.name == "router.reload" and r.exc_info]

        deadline = time.monotonic() + WAIT  # the log line follows the call that raised
        while len(errors()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert rec.seen[-1] == "rules: [second]\n"
    assert w.running
    assert len(errors()) == 2
    exc_info = errors()[0].exc_info
    assert exc_info is not None and "bad reload" in str(exc_info[1])


def test_bad_event_is_logged_and_watching_goes_on(
    config: Path, watch: Callable[..., ConfigWatcher], caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(read=config)
    w = watch([config], rec)
    targets = w._targets
    real = targets.concerns
    poison = str(config.parent / "poison.yaml")

    def concerns(path: str) -> bool:
        if path == poison:
            raise ValueError("cannot handle this event")
        return real(path)

    targets.concerns = concerns  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="router.reload"):
        Path(poison).write_text("x\n")
        deadline = time.monotonic() + WAIT
        while not any("could not handle" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline
            time.sleep(0.02)
    config.write_text("rules: [after poison]\n")
    assert rec.wait_for(1)
    assert rec.seen[-1] == "rules: [after poison]\n"


def test_callback_never_runs_concurrently(
    config: Path, watch: Callable[..., ConfigWatcher]
) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def slow() -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.3)
        with lock:
            active -= 1

    rec = Recorder(read=config, action=slow)
    watch([config], rec, debounce=0.02)
    config.write_text("rules: [1]\n")
    assert rec.wait_for(1)
    config.write_text("rules: [2]\n")  # arrives while the first callback sleeps
    assert rec.wait_for(2)
    time.sleep(0.4)
    assert peak == 1
    assert rec.seen[-1] == "rules: [2]\n"


def test_callback_can_stop_its_own_watcher(config: Path) -> None:
    """router.close() called from a reload subscriber must not deadlock on join()."""
    holder: list[ConfigWatcher] = []
    rec = Recorder(action=lambda: holder[0].stop())
    w = ConfigWatcher([config], rec, debounce=0.02)
    holder.append(w)
    w.start()
    config.write_text("rules: [stop]\n")
    assert rec.wait_for(1)
    deadline = time.monotonic() + WAIT
    while w._worker is not None and w._worker.is_alive():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not w.running


def test_stop_ends_threads_and_is_idempotent(config: Path) -> None:
    rec = Recorder()
    w = ConfigWatcher([config], rec, debounce=0.02)
    w.stop()  # before start: fine
    w = ConfigWatcher([config], rec, debounce=0.02)
    with w:
        assert w.running
        worker, observer = w._worker, w._observer
        assert worker is not None and observer is not None
        assert worker.daemon and observer.daemon
        assert all(e.daemon for e in observer.emitters)
        assert w.watched_dirs == (str(config.parent),)
    assert not worker.is_alive()
    assert not observer.is_alive()
    assert not w.running
    w.stop()
    config.write_text("rules: [after stop]\n")
    assert rec.stays_at(0)
    with pytest.raises(RuntimeError):
        w.start()


def test_trigger_and_set_paths(tmp_path: Path, watch: Callable[..., ConfigWatcher]) -> None:
    a = tmp_path / "a"
    b = tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x.yaml").write_text("x: 1\n")
    rec = Recorder()
    w = watch([a], rec, check_content=False)
    w.trigger()
    assert rec.wait_for(1)
    w.set_paths([b / "y.yaml"])
    assert w.watched_dirs == (str(b),)
    (a / "x.yaml").write_text("x: 2\n")
    assert rec.stays_at(1)
    (b / "y.yaml").write_text("y: 1\n")
    assert rec.wait_for(2)


def test_watcher_does_not_hold_the_interpreter_open(config: Path) -> None:
    code = (
        "import sys, time\n"
        "from router.runtime.reload.watcher import ConfigWatcher\n"
        f"w = ConfigWatcher([{str(config)!r}], lambda: None).start()\n"
        "print('started', flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "started" in done.stdout
    assert "Traceback" not in done.stderr

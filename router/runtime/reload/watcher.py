"""Watch the files a config is made of and call back, debounced, when they change.

Editors and deployers change files in many ways, and a watch on the file itself
(an inotify watch on its inode) loses track after the first rename. So we watch
*directories*, non-recursively: the parent of every file we were given, and every
directory we were given, and decide by name whether an event concerns the config:

- write in place: modified / closed events on the file's name;
- temp file renamed over (vim, VS Code, ``mv``): a move whose destination is the name;
- delete then recreate: deleted, then created, on the name;
- a new ``*.yaml`` / ``*.yml`` appearing in a watched config directory;
- the Kubernetes ConfigMap swap: ``..data_tmp`` renamed over ``..data`` in the
  directory (the files themselves are symlinks through ``..data`` and never change).

Events come in bursts (one save is often four or five events), so a timer that
restarts on every event runs the callback once, ``debounce`` seconds after the last
one, on a single daemon worker thread. Before calling back, the worker may hash the
files (``check_content``) and skip callbacks where nothing really changed; an optional
``poll_interval`` re-hashes on a timer too, for the rare change inotify misses
(network file systems, overflowed queues).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from router.config.limits import ReadLimits, RefusedFile, read_regular
from router.types import WatcherHealth

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver, ObservedWatch

log = logging.getLogger("router.reload")

YAML_SUFFIXES = (".yaml", ".yml")
K8S_DATA_LINK = "..data"  # the symlink a ConfigMap volume swaps atomically

# Reading a file (ours included) makes open / close-without-write events: never a change.
# Asking only for these also keeps them out of the inotify mask.
_EVENT_FILTER: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,  # a symlink to a directory may be reported as one
    DirDeletedEvent,
    DirMovedEvent,
]
_IGNORED_EVENTS = (FileOpenedEvent, FileClosedNoWriteEvent, DirModifiedEvent)
HEALTH_INTERVAL = 2.0  # seconds between checks that watchdog's observer thread lives


def is_config_name(name: str) -> bool:
    """Whether a file name in a config directory is part of the config."""
    return name.endswith(YAML_SUFFIXES) and not name.startswith(".")


def config_files(paths: Iterable[str | Path]) -> list[str]:
    """The files `paths` stand for: each file as given, each directory's YAML files sorted."""
    out: list[str] = []
    for p in paths:
        path = os.path.abspath(os.fspath(p))
        if os.path.isdir(path):
            try:
                names = sorted(os.listdir(path))
            except OSError:
                continue
            out.extend(
                os.path.join(path, n)
                for n in names
                if is_config_name(n) and os.path.isfile(os.path.join(path, n))
            )
        else:
            out.append(path)
    return out


def fingerprint(paths: Iterable[str | Path]) -> str:
    """sha256 over the names and contents of the files `paths` stand for.

    Symlinks are followed (a ConfigMap's files are links), a missing or unreadable
    file counts as its own state, so deleting a file changes the fingerprint. Only
    regular files within the config size limit are read (the loader refuses the rest).
    """
    h = hashlib.sha256()
    max_bytes = ReadLimits.from_environ().max_bytes
    for path in config_files(paths):
        encoded = os.fsencode(path)
        h.update(len(encoded).to_bytes(8, "big") + encoded)
        try:
            data = read_regular(path, max_bytes)
        except RefusedFile as exc:  # a FIFO, a device, a huge file: never block or fill memory
            h.update(b"\xfe" * 8 + str(exc).encode())
            continue
        except OSError:
            h.update(b"\xff" * 8)  # no length can be this: "missing"
            continue
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


class _Targets:
    """What to watch and how to tell whether an event path concerns the config."""

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.paths: tuple[str, ...] = tuple(os.path.abspath(os.fspath(p)) for p in paths)
        self.files: frozenset[str] = frozenset(p for p in self.paths if not os.path.isdir(p))
        self.config_dirs: frozenset[str] = frozenset(p for p in self.paths if os.path.isdir(p))
        # Directories whose `..data` swap matters: every one we watch.
        self.dirs: frozenset[str] = self.config_dirs | {os.path.dirname(f) for f in self.files}

    def concerns(self, path: str) -> bool:
        if path in self.files:
            return True
        parent, name = os.path.split(path)
        if name == K8S_DATA_LINK:
            return parent in self.dirs
        return parent in self.config_dirs and is_config_name(name)


class _Handler(FileSystemEventHandler):
    """Runs on watchdog's dispatcher thread: filter, then poke the debounce timer."""

    def __init__(self, watcher: ConfigWatcher) -> None:
        self._watcher = weakref.ref(watcher)

    def on_any_event(self, event: FileSystemEvent) -> None:
        watcher = self._watcher()
        if watcher is None:
            return
        # An exception here would end watchdog's dispatcher thread: log it, go on.
        try:
            if watcher._concerns(event):
                watcher._poke(event)
        except Exception:
            log.exception("config watcher: could not handle %r", event)


class ConfigWatcher:
    """Calls `on_change` (debounced, on one daemon thread) when the config's files change.

    `paths` are what the user gave: files and directories. `debounce` seconds after
    the last event of a burst the callback runs, never concurrently with itself; an
    exception from it is logged to ``router.reload`` and watching goes on.
    A burst that never goes quiet still calls back every `max_delay` seconds.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        on_change: Callable[[], object],
        *,
        debounce: float = 0.1,
        check_content: bool = True,
        poll_interval: float | None = None,
        polling: bool = False,
        max_delay: float | None = None,
        baseline: str | None = None,
    ) -> None:
        if debounce < 0:
            raise ValueError("debounce must be >= 0")
        if poll_interval is not None and poll_interval <= 0:
            raise ValueError("poll_interval must be > 0")
        self._on_change = on_change
        self.debounce = float(debounce)
        self.check_content = check_content
        self.poll_interval = poll_interval
        self.max_delay = max_delay if max_delay is not None else max(1.0, 10 * self.debounce)
        self._polling = polling
        self._targets = _Targets(paths)
        self._cond = threading.Condition()
        self._due: float | None = None  # monotonic time the callback is due
        self._burst_start: float | None = None
        self._stopping = False
        self._started = False
        self._fingerprint = baseline
        self._observer: BaseObserver | None = None
        self._watches: dict[str, ObservedWatch] = {}
        self._handler = _Handler(self)
        self._worker: threading.Thread | None = None
        self.events_seen = 0  # events that concerned the config
        self.callbacks_run = 0
        self.restarts = 0  # the worker's loop or the observer, restarted after dying
        self.last_crash: str | None = None
        self.last_crash_at: float | None = None
        self._last_poll = time.monotonic()
        self.last_event_at: float | None = None  # time.time() of the latest such event

    # -- public --------------------------------------------------------------------

    @property
    def paths(self) -> tuple[str, ...]:
        return self._targets.paths

    @property
    def watched_dirs(self) -> tuple[str, ...]:
        return tuple(sorted(self._watches))

    @property
    def running(self) -> bool:
        return self._started and not self._stopping

    def start(self) -> ConfigWatcher:
        """Start watching. Returns self. A watcher that was stopped cannot restart."""
        with self._cond:
            if self._stopping:
                raise RuntimeError("ConfigWatcher was stopped; make a new one")
            if self._started:
                return self
            self._started = True
        if (self.check_content or self.poll_interval) and self._fingerprint is None:
            self._fingerprint = fingerprint(self._targets.paths)
        observer = self._make_observer()
        self._observer = observer
        self._schedule(self._targets.dirs)
        observer.start()
        self._worker = threading.Thread(target=self._run, name="router-config-watcher", daemon=True)
        self._worker.start()
        _live.add(self)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching and join the threads (not the current one). Idempotent."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        observer, self._observer = self._observer, None
        me = threading.current_thread()
        if observer is not None:
            try:
                observer.stop()
                if observer is not me and observer.is_alive():
                    observer.join(timeout)
            except Exception:
                log.exception("config watcher: error while stopping the observer")
        worker = self._worker
        if worker is not None and worker is not me and worker.is_alive():
            worker.join(timeout)
        _live.discard(self)

    close = stop

    def set_paths(self, paths: Sequence[str | Path], *, baseline: str | None = None) -> None:
        """Watch another set of paths (a reload may have changed which files a config uses).

        The content baseline becomes `baseline`, or the new paths' fingerprint now.
        """
        targets = _Targets(paths)
        with self._cond:
            self._targets = targets
            if self.check_content or self.poll_interval:
                self._fingerprint = baseline if baseline is not None else fingerprint(targets.paths)
        if self._observer is None:
            return
        for d in set(self._watches) - targets.dirs:
            watch = self._watches.pop(d)
            try:
                self._observer.unschedule(watch)
            except Exception:
                log.exception("config watcher: could not stop watching %s", d)
        self._schedule(targets.dirs - set(self._watches))

    def trigger(self) -> None:
        """Act as if an event had arrived now (debounced like one)."""
        self._poke(None)

    def __enter__(self) -> ConfigWatcher:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self._stopping else "new")
        return f"<ConfigWatcher {state} paths={list(self.paths)!r} debounce={self.debounce}>"

    # -- internals -----------------------------------------------------------------

    def _make_observer(self) -> BaseObserver:
        if self._polling:
            from watchdog.observers.polling import PollingObserver

            return PollingObserver(timeout=min(1.0, self.poll_interval or 1.0))
        from watchdog.observers import Observer

        return Observer()

    def _schedule(self, dirs: Iterable[str]) -> None:
        assert self._observer is not None
        for d in sorted(dirs):
            if not os.path.isdir(d):
                log.warning("config watcher: %s is not a directory; not watching it", d)
                continue
            try:
                self._watches[d] = self._observer.schedule(
                    self._handler, d, recursive=False, event_filter=_EVENT_FILTER
                )
            except OSError as e:  # inotify watch limit, permissions
                log.error("config watcher: cannot watch %s: %s", d, e)

    def _concerns(self, event: FileSystemEvent) -> bool:
        if isinstance(event, _IGNORED_EVENTS):
            return False
        targets = self._targets
        for raw in (event.src_path, event.dest_path):
            if raw and targets.concerns(os.fsdecode(raw)):
                return True
        return False

    def _poke(self, event: FileSystemEvent | None) -> None:
        now = time.monotonic()
        with self._cond:
            if self._stopping:
                return
            if event is not None:
                self.events_seen += 1
                self.last_event_at = time.time()
                dest = f" -> {os.fsdecode(event.dest_path)}" if event.dest_path else ""
                log.debug("config watcher: %s %s%s", event.event_type, event.src_path, dest)
            if self._burst_start is None:
                self._burst_start = now
            # The timer restarts on each event, but a burst cannot postpone forever.
            self._due = min(now + self.debounce, self._burst_start + self.max_delay)
            self._cond.notify_all()

    def _run(self) -> None:
        """Supervise `_loop`: a crash is logged, counted in `health()`, and the loop restarts
        at once with a check of the files (the change in flight may have been lost)."""
        while True:
            try:
                self._loop()
                return
            except BaseException as exc:  # a thread that dies silently stops all reloads
                with self._cond:
                    if self._stopping:
                        return
                    self._crashed(f"{type(exc).__name__}: {exc}")
                    self._due = time.monotonic()
                    self._burst_start = None
                log.error("config watcher crashed (%s); restarted it", self.last_crash)
                time.sleep(min(0.01 * 2 ** min(self.restarts, 9), 5.0))  # no hot crash loop

    def _crashed(self, what: str) -> None:
        self.restarts += 1
        self.last_crash = what
        self.last_crash_at = time.time()

    def _loop(self) -> None:
        while True:
            with self._cond:
                polled = False
                while not self._stopping:
                    if self._due is None:
                        wait = min(self.poll_interval or HEALTH_INTERVAL, HEALTH_INTERVAL)
                        if self._cond.wait(wait):
                            continue
                        if self._observer_died():
                            break  # `_due` is set: check the files now
                        if self.poll_interval and self._poll_due():
                            polled = True
                            break
                        continue
                    remaining = self._due - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(min(remaining, HEALTH_INTERVAL))
                if self._stopping:
                    return
                self._due = None
                self._burst_start = None
            try:
                self._fire(polled)
            except Exception:  # never let the worker die
                log.exception("config watcher: error while checking for changes")

    def _poll_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_poll >= (self.poll_interval or 0):
            self._last_poll = now
            return True
        return False

    def _observer_died(self) -> bool:
        """Restart watchdog's observer if its thread ended (holding `_cond`)."""
        observer = self._observer
        if observer is None or observer.is_alive() or self._stopping:
            return False
        self._crashed("the file observer thread stopped")
        log.error("config watcher: the file observer stopped; restarting it")
        fresh = self._make_observer()
        self._observer = fresh
        self._watches.clear()
        self._schedule(self._targets.dirs)
        fresh.start()
        self._due = time.monotonic()
        return True

    def health(self) -> WatcherHealth:
        """Whether the threads live, and how often and why they were restarted."""
        worker, observer = self._worker, self._observer
        return WatcherHealth(
            state="running" if self.running else ("stopped" if self._stopping else "new"),
            worker_alive=bool(worker and worker.is_alive()),
            observer_alive=bool(observer and observer.is_alive()),
            restarts=self.restarts,
            last_crash=self.last_crash,
            last_crash_at=self.last_crash_at,
        )

    def _fire(self, polled: bool) -> None:
        if self.check_content or polled:
            current = fingerprint(self._targets.paths)
            if current == self._fingerprint:
                if not polled:
                    log.debug("config watcher: files unchanged, no reload")
                return
            self._fingerprint = current
        elif self.poll_interval:
            self._fingerprint = fingerprint(self._targets.paths)  # so the next poll is quiet
        self.callbacks_run += 1
        try:
            self._on_change()
        except Exception:
            log.exception("config reload callback failed; still watching")


# Watchers still running at interpreter exit are stopped, so no thread outlives it.
_live: weakref.WeakSet[ConfigWatcher] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for watcher in list(_live):
        with contextlib.suppress(Exception):  # best effort at exit
            watcher.stop(timeout=1.0)


__all__ = ["ConfigWatcher", "config_files", "fingerprint", "is_config_name"]

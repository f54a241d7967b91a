"""Hostile edits under hot reload: real files, real watchdog. The serving router and
its watcher outlive every one, and the error shows in status()."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from router import Router
from tests.config.test_config_limits import BOMB
from tests.runtime.reload.test_reload import Reloads, config_text, open_router, wait_until

__all__ = ["open_router"]  # the fixture, shared


def _serves(router: Router, gen: int) -> None:
    res = router.route("fn main", use_case="coding")
    assert res.model == f"m{gen}"


def test_alias_bomb_through_hot_reload(tmp_path: Path, open_router: Callable[..., Router]) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config_text(1))
    router = open_router(path)
    reloads = Reloads(router)

    path.write_text(BOMB)
    event = reloads.wait_failure()
    assert event.error is not None and "aliases expand to more than" in event.error
    assert f"{path}:12:" in router.status()["last_error"]
    assert router.status()["watching"] is True
    _serves(router, 1)  # the old config still serves

    path.write_text(config_text(2))  # and the watcher is still there to see the fix
    reloads.wait_version(2)
    _serves(router, 2)
    assert router.status()["last_error"] is None


def test_config_swapped_for_special_files(
    tmp_path: Path, open_router: Callable[..., Router]
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config_text(1))
    router = open_router(path)
    reloads = Reloads(router)

    link = tmp_path / ".swap"
    os.symlink("/dev/zero", link)
    os.replace(link, path)  # renamed over, as a deployer would
    reloads.wait(lambda e: not e.ok and "character device" in (e.error or ""))
    _serves(router, 1)

    path.unlink()
    os.mkfifo(path)
    reloads.wait(lambda e: not e.ok and "a FIFO" in (e.error or ""))
    _serves(router, 1)
    assert router.status()["watching"] is True

    path.unlink()
    path.write_text(config_text(2))
    reloads.wait_version(2)
    _serves(router, 2)


class _Boom(BaseException):
    """Not an Exception: the kind of error that used to end the watcher's thread."""


def test_a_watcher_worker_that_dies_is_restarted(
    tmp_path: Path, open_router: Callable[..., Router]
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config_text(1))
    router = open_router(path)
    reloads = Reloads(router)
    exploded = []

    def explode_once(event: object) -> None:
        if not exploded:
            exploded.append(event)
            raise _Boom("subscriber blew up")

    router.on_reload(explode_once)
    path.write_text(config_text(2))
    reloads.wait_version(2)
    wait_until(lambda: router.status()["watcher"]["restarts"] == 1)
    status = router.status()
    assert status["watching"] is True
    assert "_Boom: subscriber blew up" in status["watcher"]["last_crash"]

    path.write_text(config_text(3))  # the restarted worker still reloads
    reloads.wait_version(3)
    _serves(router, 3)


def test_a_dead_file_observer_is_restarted(
    tmp_path: Path, open_router: Callable[..., Router]
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config_text(1))
    router = open_router(path)
    reloads = Reloads(router)
    watcher = router._watcher
    assert watcher is not None
    dead = watcher._observer
    dead.stop()
    dead.join(5)
    assert router.status()["watcher"]["observer_alive"] is False
    wait_until(lambda: router.status()["watcher"]["observer_alive"] is True)
    assert router.status()["watcher"]["last_crash"] == "the file observer thread stopped"
    path.write_text(config_text(2))
    reloads.wait_version(2)
    _serves(router, 2)


def test_an_unexpected_reload_error_shows_in_status(
    tmp_path: Path, open_router: Callable[..., Router], monkeypatch
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(config_text(1))
    router = open_router(path, watch=False)

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError("simulated")

    monkeypatch.setattr("router.runtime.router._load", out_of_memory)
    event = router.reload()
    assert not event.ok
    assert router.status()["last_error"] == "reload failed: MemoryError: simulated"
    _serves(router, 1)

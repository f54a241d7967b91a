"""Hostile edits under hot reload: real files, real watchdog. The serving router and
its watcher outlive every one, and the error shows in status()."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from router import Router
from tests.config.test_config_limits import BOMB
from tests.runtime.reload.test_reload import Reloads, config_text, open_router

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

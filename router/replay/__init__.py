"""`router replay`: yesterday's logged traffic through a new config, no model called."""

from router.replay.logged import LoggedRequest, read_log
from router.replay.report import ReplayReport
from router.replay.run import replay

replay_log = replay  # its name at the top (`router.replay_log`): `router.replay` is this package

__all__ = ["LoggedRequest", "ReplayReport", "read_log", "replay", "replay_log"]

"""The fake server and config writer of the observe tests."""

from tests.observe.conftest import fake, fake_server, write_config

__all__ = ["fake", "fake_server", "write_config"]

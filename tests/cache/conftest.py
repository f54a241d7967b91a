"""The fake server and config writer of the observe tests; a real Redis for the Redis cache."""

from tests.observe.conftest import fake, fake_server, write_config
from tests.runtime.state.conftest import redis_server, redis_server_session

__all__ = ["fake", "fake_server", "redis_server", "redis_server_session", "write_config"]

"""The Redis connection of an app (or none, in the embedded setup).

`REDIS_URL` unset: no Redis; callers fall back to in-process cache, memory rate limits and
inline jobs. `fakeredis://` (tests without a real Redis): one in-memory server per app.
The client lives in `app.extensions`, so two apps in one process never share one.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import redis
from flask import Flask, current_app

# Short timeouts: a Redis that hangs must turn into a clear error, not a stuck request.
SOCKET_TIMEOUT_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 1.0

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class RedisClient:
    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        client = app.extensions["redis"] = connect(url) if url else None
        app.extensions["redis_hot_line"] = HotLine(client) if type(client) is redis.Redis else None

    @property
    def client(self) -> redis.Redis | None:
        return current_app.extensions.get("redis")

    def command(self, *args: Any) -> Any:
        """One command for a hot path (the cache HIT): on this thread's own connection where
        there is a real Redis, else through the client. Raises the client's errors."""
        line = current_app.extensions.get("redis_hot_line")
        if line is not None:
            return line.command(*args)
        client = self.client
        assert client is not None, "no Redis"
        return client.execute_command(*args)

    @property
    def enabled(self) -> bool:
        return self.client is not None


def connect(url: str) -> redis.Redis:
    if url.startswith("fakeredis://"):
        import fakeredis  # test-only dependency

        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


class HotLine(threading.local):
    """A connection of this thread's own, outside the pool, for the commands of a cache HIT.

    redis-py's pool costs a HIT more CPU than the round trip does (a checkout with its pid
    check and argument inspection, a retry wrapper, the release: about 40 us here); a thread
    keeping its connection needs none of it. Same settings as the pool's connections (timeouts,
    health checks). A connection that fails is dropped; a command that found the connection
    closed (Redis restarted) is sent once more on a new one; a timeout is not retried.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.pool = client.connection_pool
        self.connection: Any = None
        self.pid = os.getpid()

    def command(self, *args: Any) -> Any:
        for attempt in (1, 2):
            connection = self.connection
            if connection is None or self.pid != os.getpid():  # none yet, or forked
                connection = self.connection = self.pool.connection_class(**self.pool.connection_kwargs)
                self.pid = os.getpid()
            try:
                connection.send_command(*args)
                return connection.read_response()
            except redis.exceptions.ConnectionError:
                connection.disconnect()
                self.connection = None
                if attempt == 2:
                    raise
            except BaseException:
                connection.disconnect()
                self.connection = None
                raise
        return None

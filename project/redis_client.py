"""The Redis connection of an app (or none, in the embedded setup).

`REDIS_URL` unset: no Redis; callers fall back to in-process cache, memory rate limits and
inline jobs. `fakeredis://` (tests without a real Redis): one in-memory server per app.
The client lives in `app.extensions`, so two apps in one process never share one.
"""

from __future__ import annotations

import redis
from flask import Flask, current_app

# Short timeouts: a Redis that hangs must turn into a clear error, not a stuck request.
SOCKET_TIMEOUT_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 1.0

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class RedisClient:
    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        app.extensions["redis"] = connect(url) if url else None

    @property
    def client(self) -> redis.Redis | None:
        return current_app.extensions.get("redis")

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

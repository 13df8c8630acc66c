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
from redis.backoff import NoBackoff
from redis.retry import Retry

from project.breaker import CircuitBreaker

# Defaults of REDIS_TIMEOUT_SECONDS and REDIS_BREAKER_SECONDS (config.py), for callers without
# an app: a Redis that hangs must turn into a clear error, not a stuck request.
TIMEOUT_SECONDS = 1.0
BREAKER_SECONDS = 5.0

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class CircuitOpen(redis.exceptions.ConnectionError):
    """Redis failed moments ago in this process: refused without a round trip (a
    ConnectionError, so every caller's fallback for an unreachable Redis applies)."""


class RedisClient:
    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        timeouts = (app.config["REDIS_TIMEOUT_SECONDS"], app.config["REDIS_BREAKER_SECONDS"])
        client = app.extensions["redis"] = connect(url, *timeouts) if url else None
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


def connect(
    url: str, timeout: float = TIMEOUT_SECONDS, breaker_seconds: float = BREAKER_SECONDS
) -> redis.Redis:
    if url.startswith("fakeredis://"):
        import fakeredis  # test-only dependency

        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    client = redis.Redis.from_url(url, **client_options(timeout))
    return guard(client, CircuitBreaker(breaker_seconds))


def client_options(timeout: float) -> dict[str, Any]:
    """What every client to our Redis is built with (the limiter's storage included).

    One timeout for connecting and for every answer. One immediate retry, on a connection
    error only: a pooled connection that Redis closed (a restart) is replaced at once, while a
    timeout is not paid twice. (redis-py's default retries 10 times with backoff, which turned
    a hung Redis into a request held for many timeouts.)
    """
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 30,
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
    }


def guard(client: redis.Redis, breaker: CircuitBreaker) -> redis.Redis:
    """Put `breaker` in front of every connection of `client`'s pool (commands, pipelines,
    the HotLine, RQ, the limiter when it shares the pool), whatever the connection class the
    URL chose (plain, TLS, Sentinel-managed)."""
    pool = client.connection_pool
    base = pool.connection_class
    pool.connection_class = type(f"Guarded{base.__name__}", (GuardedConnection, base), {"breaker": breaker})
    pool.breaker = breaker  # type: ignore[attr-defined]
    return client


class GuardedConnection:
    """Mixin for a redis-py connection class: refuses to send while the breaker is open; a
    timeout or a failed connect opens it; any answer closes it. A connection Redis closed
    (a restart) does not count: the retry reconnects, and only a failed connect counts."""

    breaker: CircuitBreaker

    def connect_check_health(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse_while_open()
        try:
            return super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        except REDIS_ERRORS:
            self.breaker.failure()
            raise

    def send_packed_command(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse_while_open()
        try:
            return super().send_packed_command(*args, **kwargs)  # type: ignore[misc]
        except redis.exceptions.TimeoutError:
            self.breaker.failure()
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            response = super().read_response(*args, **kwargs)  # type: ignore[misc]
        except redis.exceptions.TimeoutError:
            self.breaker.failure()
            raise
        self.breaker.success()
        return response

    def _refuse_while_open(self) -> None:
        if not self.breaker.allow():
            raise CircuitOpen("Redis failed moments ago; not tried again until the breaker closes")


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

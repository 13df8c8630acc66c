"""The Redis connection of an app (or none, in the embedded setup): the one place a Redis
client is built from `REDIS_URL`.

`REDIS_URL` unset: no Redis; callers fall back to in-process cache, memory rate limits and
inline jobs. `fakeredis://` (tests without a real Redis): one in-memory server per app.
`redis://` and `rediss://` (TLS: `?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.pem`) are
redis-py's URLs; `redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]`
asks the sentinels for the service's master, and asks again after a failover (the password
is the Redis servers', not the sentinels'; query options such as `ssl=true` and the `ssl_*`
ones apply to the connections to the servers).

Every part that talks to Redis uses this client or its connection pool (cache, hot line,
rate limits, RQ queues and workers, schedulers, heartbeats, health, the dashboard), so
timeouts, TLS and Sentinel live here only. The client lives in `app.extensions`, so two apps
in one process never share one.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.sentinel
from flask import Flask, current_app
from redis.backoff import ExponentialBackoff
from redis.connection import parse_url
from redis.retry import Retry

from project.breaker import CircuitBreaker

# Defaults of REDIS_TIMEOUT_SECONDS and REDIS_BREAKER_SECONDS (config.py), for callers without
# an app: a Redis that hangs must turn into a clear error, not a stuck request.
TIMEOUT_SECONDS = 1.0
BREAKER_SECONDS = 5.0

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379

# An outage, whatever its form: unreachable or hung (ConnectionError, TimeoutError; a master
# the sentinels cannot name is a ConnectionError too), or a master demoted under us that
# refuses writes (ReadOnlyError: a failover, or a `REPLICAOF` by hand).
REDIS_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
)


class CircuitOpen(redis.exceptions.ConnectionError):
    """Redis failed moments ago in this process: refused without a round trip (a
    ConnectionError, so every caller's fallback for an unreachable Redis applies)."""


class RedisClient:
    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        timeout = float(app.config["REDIS_TIMEOUT_SECONDS"])
        retry_seconds = float(app.config["REDIS_RETRY_SECONDS"])
        breaker_seconds = float(app.config["REDIS_BREAKER_SECONDS"])
        if app.config.get("REDIS_BACKGROUND"):
            # A worker or the scheduler (worker.py): no request waits on it, so it rides
            # through a failover by retrying, and it has no breaker to skip Redis with.
            retry_seconds = float(app.config["REDIS_BACKGROUND_RETRY_SECONDS"])
            breaker_seconds = 0.0
        client = app.extensions["redis"] = (
            connect(url, timeout, breaker_seconds, retry_seconds) if url else None
        )
        real = client is not None and not type(client).__module__.startswith("fakeredis")
        app.extensions["redis_hot_line"] = ThreadConnection(client) if client is not None and real else None

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


# How long a command keeps trying when the connection fails (refused, reset, a demoted master
# under Sentinel, no master named yet): a Sentinel failover's switch takes about a second once
# the sentinels agree. Web processes keep it short (REDIS_RETRY_SECONDS: a request must not
# wait long on a Redis that is gone, and the breaker then skips Redis for a while); workers and
# the scheduler ride through a longer failover (REDIS_BACKGROUND_RETRY_SECONDS). A timeout is
# never retried: a hung Redis already cost its timeout.
DEFAULT_RETRY_SECONDS = 1.0


class BreakerAwareRetry(Retry):
    """redis-py's Retry, except that a refusal by the open breaker is not retried (it would
    only sleep through the backoff and be refused again)."""

    def call_with_retry(self, do, fail, is_retryable=None, with_failure_count=False):
        def retryable(error: Exception) -> bool:
            if isinstance(error, CircuitOpen):
                return False
            return is_retryable(error) if is_retryable else True

        return super().call_with_retry(do, fail, retryable, with_failure_count)


def retry_policy(seconds: float) -> Retry:
    """Retries with exponential backoff (0.1 s doubling, at most 0.5 s apart) adding up to
    about `seconds`, on connection errors only; at least one, so that a pooled connection Redis
    closed (a restart) is replaced within the command."""
    backoff = ExponentialBackoff(cap=0.5, base=0.05)
    retries, waited = 0, 0.0
    while waited < seconds:
        retries += 1
        waited += backoff.compute(retries)
    return BreakerAwareRetry(backoff, max(retries, 1), supported_errors=(redis.exceptions.ConnectionError,))


def connect(
    url: str,
    timeout: float = TIMEOUT_SECONDS,
    breaker_seconds: float = BREAKER_SECONDS,
    retry_seconds: float = DEFAULT_RETRY_SECONDS,
) -> redis.Redis:
    """A client for `url` (see the module's docstring for the forms), every connection of it
    behind one circuit breaker.

    One timeout for connecting and for every answer; connection errors are retried for about
    `retry_seconds` (retry_policy), timeouts never: redis-py's default retried 10 times with
    backoff, timeouts included, which turned a hung Redis into a request held for many of them.
    The limiter counts through this client's pool, so all of it applies there too."""
    if url.startswith("fakeredis://"):
        import fakeredis  # test-only dependency

        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    options = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 30,
        "retry": retry_policy(retry_seconds),
    }
    if url.startswith(SENTINEL_SCHEME + "://"):
        client = _sentinel_master(url, options, timeout)
    else:
        client = redis.Redis.from_url(url, **options)
    return guard(client, CircuitBreaker(breaker_seconds))


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, dict[str, Any]]:
    """`redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db][?options]` ->
    (sentinel addresses, service name, options for the connections to the servers).
    Raises ValueError naming what is wrong (the URL itself is never echoed: it may hold a
    password)."""
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}://")
    credentials, _, hosts = parts.netloc.rpartition("@")
    sentinels = []
    for host in filter(None, hosts.split(",")):
        name, colon, port = host.rpartition(":")
        if not colon:
            name, port = host, str(DEFAULT_SENTINEL_PORT)
        if not port.isdigit() or not name:
            raise ValueError("REDIS_URL: a sentinel address is host:port")
        sentinels.append((name.strip("[]"), int(port)))
    path = [unquote(piece) for piece in parts.path.split("/") if piece]
    if not sentinels or not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ValueError("REDIS_URL: redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]")
    # redis-py's own URL parser reads the query options (timeouts, ssl_*), typed as it types them.
    options = parse_url("redis://localhost" + (f"?{parts.query}" if parts.query else ""))
    options.pop("host", None)
    options["db"] = int(path[1]) if len(path) == 2 else options.get("db", 0)
    username, _, password = credentials.partition(":")
    if username:
        options["username"] = unquote(username)
    if password:
        options["password"] = unquote(password)
    if str(options.pop("ssl", "")).lower() in ("1", "true", "yes"):
        options["ssl"] = True
    return sentinels, path[0], options


def _sentinel_master(url: str, client_options: dict[str, Any], timeout: float) -> redis.Redis:
    """A client of the service's master: each new connection asks the sentinels where the
    master is, and a connection that meets a demoted master (READONLY) is dropped, so the
    next command (redis-py retries it) goes to the new one."""
    sentinels, service, options = parse_sentinel_url(url)
    timeouts = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    manager = redis.sentinel.Sentinel(sentinels, sentinel_kwargs=timeouts)
    return manager.master_for(service, **{**client_options, **options})


def guard(client: redis.Redis, breaker: CircuitBreaker) -> redis.Redis:
    """Put `breaker` in front of every connection of `client`'s pool (commands, pipelines,
    the ThreadConnection, RQ, the limiter when it shares the pool), whatever the connection class the
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


class ThreadConnection(threading.local):
    """A connection of this thread's own, outside the pool, for the commands of a cache HIT.

    redis-py's pool costs a HIT more CPU than the round trip does (a checkout with its pid
    check and argument inspection, a retry wrapper, the release; bench/README.md); a thread
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
            try:
                if connection is None or self.pid != os.getpid():  # none yet, or forked
                    connection = self.pool.connection_class(**self.pool.connection_kwargs)
                    # Connect explicitly: send_command's implicit connect is the base class's,
                    # and a Sentinel-managed connection would then go to its default,
                    # localhost:6379, instead of asking the sentinels for the master.
                    connection.connect()
                    self.connection, self.pid = connection, os.getpid()
                connection.send_command(*args)
                return connection.read_response()
            except redis.exceptions.ConnectionError:
                self._drop(connection)
                if attempt == 2:
                    raise
            except BaseException:
                self._drop(connection)
                raise
        return None

    def _drop(self, connection: Any) -> None:
        if connection is not None:
            connection.disconnect()
        self.connection = None

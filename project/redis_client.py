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

# Short timeouts: a Redis that hangs must turn into a clear error, not a stuck request.
SOCKET_TIMEOUT_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 1.0

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


class RedisClient:
    def init_app(self, app: Flask) -> None:
        url = app.config.get("REDIS_URL")
        retry_seconds = float(app.config.get("REDIS_RETRY_SECONDS", DEFAULT_RETRY_SECONDS))
        if app.config.get("REDIS_BACKGROUND"):  # a worker or the scheduler (worker.py)
            retry_seconds = float(app.config.get("REDIS_BACKGROUND_RETRY_SECONDS", retry_seconds))
        client = app.extensions["redis"] = connect(url, retry_seconds) if url else None
        real = client is not None and not type(client).__module__.startswith("fakeredis")
        app.extensions["redis_hot_line"] = HotLine(client) if client is not None and real else None

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


CLIENT_OPTIONS: dict[str, Any] = {
    "socket_timeout": SOCKET_TIMEOUT_SECONDS,
    "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "health_check_interval": 30,
}
# How long a command keeps trying when the connection fails (refused, reset, a demoted master
# under Sentinel, no master named yet): a Sentinel failover's switch takes about a second
# once the sentinels agree. Web processes keep it short (a request must not wait long on a
# Redis that is gone); background processes may ride through a longer failover. A timeout
# is never retried: a hung Redis already cost SOCKET_TIMEOUT_SECONDS.
DEFAULT_RETRY_SECONDS = 1.0


def retry_policy(seconds: float) -> Retry:
    """Retries with exponential backoff (0.1 s doubling, at most 0.5 s apart) adding up to
    about `seconds`, on connection errors only."""
    backoff = ExponentialBackoff(cap=0.5, base=0.05)
    retries, waited = 0, 0.0
    while waited < seconds:
        retries += 1
        waited += backoff.compute(retries)
    return Retry(backoff, retries, supported_errors=(redis.exceptions.ConnectionError,))


def connect(url: str, retry_seconds: float = DEFAULT_RETRY_SECONDS) -> redis.Redis:
    """A client for `url` (see the module's docstring for the forms)."""
    if url.startswith("fakeredis://"):
        import fakeredis  # test-only dependency

        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    options = {**CLIENT_OPTIONS, "retry": retry_policy(retry_seconds)}
    if url.startswith(SENTINEL_SCHEME + "://"):
        return _sentinel_master(url, options)
    return redis.Redis.from_url(url, **options)


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


def _sentinel_master(url: str, client_options: dict[str, Any]) -> redis.Redis:
    """A client of the service's master: each new connection asks the sentinels where the
    master is, and a connection that meets a demoted master (READONLY) is dropped, so the
    next command (redis-py retries it) goes to the new one."""
    sentinels, service, options = parse_sentinel_url(url)
    timeouts = {key: CLIENT_OPTIONS[key] for key in ("socket_timeout", "socket_connect_timeout")}
    manager = redis.sentinel.Sentinel(sentinels, sentinel_kwargs=timeouts)
    return manager.master_for(service, **{**client_options, **options})


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

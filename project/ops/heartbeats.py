"""Worker liveness from heartbeats: a worker silent for its TTL (90 s by default) is not live.

Each worker process keeps one key alive, `workers:heartbeat:<name>`, with a TTL of
`WORKER_HEARTBEAT_TTL_SECONDS`, rewriting it four times per TTL from a background thread
(so a worker busy with a long job still beats), and keeps its name in the set
`workers:heartbeats`. A killed worker, a crashed one or a lost host stops beating and Redis
forgets its key by itself, using Redis's clock only (no clock skew between hosts). After
Redis restarts empty, the next beat writes both again.

Counting reads the set and checks each key in one pipeline (two round trips, no KEYS or
SCAN), and drops names whose key has expired. Worker names start with the host name
(`<host>:<pid>:<random>`), so a container's healthcheck can ask about its own worker.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import redis

from project.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)

NAMES_KEY = "workers:heartbeats"
KEY_PREFIX = "workers:heartbeat:"
BEATS_PER_TTL = 4


def worker_name() -> str:
    """`<host>:<pid>:<random>`: unique even when a restarted container reuses host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def beat(client: redis.Redis, name: str, ttl: int) -> bool:
    """Say `name` is alive for `ttl` seconds; True when Redis did not know the name."""
    with client.pipeline(transaction=False) as pipe:
        pipe.set(KEY_PREFIX + name, datetime.now(UTC).isoformat(), ex=ttl)
        pipe.sadd(NAMES_KEY, name)
        _, added = pipe.execute()
    return bool(added)


def forget(client: redis.Redis, name: str) -> None:
    """A worker stopping cleanly leaves at once instead of after its TTL."""
    with client.pipeline(transaction=False) as pipe:
        pipe.delete(KEY_PREFIX + name)
        pipe.srem(NAMES_KEY, name)
        pipe.execute()


def live_workers(client: redis.Redis, host: str | None = None) -> list[str]:
    """Names of the workers that beat within their TTL (of `host` only, when given)."""
    names = sorted(name.decode() if isinstance(name, bytes) else name for name in client.smembers(NAMES_KEY))
    if host is not None:
        names = [name for name in names if name.startswith(f"{host}:")]
    if not names:
        return []
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.exists(KEY_PREFIX + name)
        alive = pipe.execute()
    gone = [name for name, exists in zip(names, alive, strict=True) if not exists]
    if gone:
        client.srem(NAMES_KEY, *gone)
    return [name for name, exists in zip(names, alive, strict=True) if exists]


class Heartbeat:
    """Calls `beat()` now and then every `ttl / 4` seconds in a daemon thread, until `stop()`.

    A Redis error is logged once per outage (the worker itself reports it too); beating
    resumes when Redis answers again.
    """

    def __init__(self, beat: Callable[[], object], ttl: int) -> None:
        self._beat = beat
        self.interval = max(ttl / BEATS_PER_TTL, 0.2)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        failing = False
        while True:
            try:
                self._beat()
                if failing:
                    log.info("heartbeat: Redis answers again")
                failing = False
            except REDIS_ERRORS as exc:
                if not failing:
                    log.warning("heartbeat: cannot reach Redis (%s)", exc.__class__.__name__)
                failing = True
            except Exception:
                log.exception("heartbeat failed")
            if self._stopped.wait(self.interval):
                return

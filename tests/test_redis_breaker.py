"""The Redis circuit breaker (project/breaker.py, project/redis_client.py): one timeout for every client, so a
hung Redis costs a process one timeout per window instead of one per request."""

from __future__ import annotations

import socket
import time

import pytest
import redis

from project.extensions import limiter
from project.redis_client import REDIS_ERRORS, CircuitOpen, connect


@pytest.fixture
def hung_redis():
    """A port that accepts connections (the kernel's backlog) and never answers: what a
    SIGSTOPped Redis, or a host gone mid-failover behind a live address, looks like."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    listener.close()


def test_a_hung_redis_costs_one_timeout_then_calls_fail_fast(hung_redis):
    client = connect(hung_redis, timeout=0.2, breaker_seconds=60)
    with pytest.raises(redis.exceptions.TimeoutError):
        client.get("key")
    for call in (lambda: client.get("key"), lambda: client.pipeline().incr("n").execute()):
        with pytest.raises(CircuitOpen):
            call()
    assert issubclass(CircuitOpen, REDIS_ERRORS)  # every caller's Redis-down fallback applies


def test_after_the_window_the_next_call_tries_again(hung_redis):
    client = connect(hung_redis, timeout=0.2, breaker_seconds=0.3)
    with pytest.raises(redis.exceptions.TimeoutError):
        client.get("key")
    with pytest.raises(CircuitOpen):
        client.get("key")
    time.sleep(0.4)
    with pytest.raises(redis.exceptions.TimeoutError):  # a real try, not a refusal
        client.get("key")


def test_a_refused_connection_opens_it_too():
    with socket.socket() as probe:  # a free port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = connect(f"redis://127.0.0.1:{port}/0", timeout=0.2, breaker_seconds=60)
    with pytest.raises(redis.exceptions.ConnectionError):
        client.get("key")
    assert client.connection_pool.breaker.is_open
    with pytest.raises(CircuitOpen):
        client.get("key")


@pytest.mark.redis
def test_an_answer_closes_it(app):
    client = app.extensions["redis"]
    breaker = client.connection_pool.breaker
    breaker.failure()
    with pytest.raises(CircuitOpen):
        client.ping()
    breaker.open_seconds = 0
    breaker.failure()  # a window already over: the next call goes out
    assert client.ping() is True
    assert not breaker.is_open


@pytest.mark.redis
@pytest.mark.app_config(RATELIMIT_ENABLED=True)
def test_the_limiter_counts_through_the_apps_own_pool(app):
    storage = limiter._storage
    assert storage is not None
    assert storage.storage.connection_pool is app.extensions["redis"].connection_pool
    assert storage.check()  # and it reaches Redis through it

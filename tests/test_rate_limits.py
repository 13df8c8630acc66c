"""project/rate_limits.py: the fixed window in one Redis round trip, same answers as stock."""

from __future__ import annotations

import os
import time

import pytest
from limits import parse
from limits.storage import MemoryStorage, RedisStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from project.rate_limits import OneTripFixedWindow

API = "/api/v1/products"


@pytest.fixture
def storage_reads(monkeypatch):
    """How often the limiter read a window back from Redis (GET, TTL)."""
    reads = {"get": 0, "get_expiry": 0}
    for name in reads:
        original = getattr(RedisStorage, name)

        def counted(self, key, _name=name, _original=original):
            reads[_name] += 1
            return _original(self, key)

        monkeypatch.setattr(RedisStorage, name, counted)
    return reads


@pytest.mark.redis
@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATE_LIMIT_DEFAULT="3/minute")
def test_limited_requests_get_their_headers_and_429_from_the_hit_alone(client, storage_reads):
    remaining = []
    for _ in range(3):
        response = client.get(API)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert time.time() - 1 <= int(response.headers["X-RateLimit-Reset"]) <= time.time() + 61
        remaining.append(response.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    refused = client.get(API)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert storage_reads == {"get": 0, "get_expiry": 0}


def storages():  # a generator: the Redis one only when the suite has a real Redis
    yield MemoryStorage()
    url = os.environ.get("TEST_REDIS_URL", "")
    if url.startswith("redis"):
        yield storage_from_string(url)


@pytest.mark.parametrize("storage", list(storages()), ids=lambda s: type(s).__name__)
def test_outside_a_request_the_window_is_read_from_the_storage_as_stock_does(storage):
    item = parse("5/minute")
    storage.clear(item.key_for("one-trip-test"))
    limiter, stock = OneTripFixedWindow(storage), FixedWindowRateLimiter(storage)
    assert limiter.hit(item, "one-trip-test") and limiter.hit(item, "one-trip-test", cost=2)
    assert limiter.get_window_stats(item, "one-trip-test").remaining == 2
    assert stock.get_window_stats(item, "one-trip-test").remaining == 2
    assert not limiter.hit(item, "one-trip-test", cost=3)
    storage.clear(item.key_for("one-trip-test"))

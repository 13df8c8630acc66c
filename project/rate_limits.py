"""The rate limiter's strategy: a fixed window whose hit also answers the window's state.

Flask-Limiter's fixed window costs three Redis round trips on every limited request: the hit
(INCRBY + EXPIRE, one script), then GET and TTL for the X-RateLimit-* headers (and the 429's
Retry-After). Here the hit's script returns the count and the key's TTL too, and the window
read right after it in the same request is answered from them: one round trip (a POST
/orders spent a third of its time waiting on those three). Same keys, same counts, same
headers. Other storages (memory: tests and the in-memory fallback during a Redis outage)
take the stock path.
"""

from __future__ import annotations

import time
from typing import Any, cast

from flask import g, has_app_context
from limits import RateLimitItem
from limits.storage import RedisStorage
from limits.strategies import STRATEGIES, FixedWindowRateLimiter
from limits.util import WindowStats

ONE_TRIP = "fixed-window-one-trip"

# limits' incr_expire.lua, returning the key's remaining milliseconds beside the count.
_HIT = """
local current = redis.call("incrby", KEYS[1], ARGV[2])
if tonumber(current) == tonumber(ARGV[2]) then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("pttl", KEYS[1])}
"""


def _windows() -> dict[str, tuple[float, int]]:
    """This request's hits: key -> (reset time, count). Without an app context, none."""
    return g.setdefault("rate_limit_windows", {}) if has_app_context() else {}


class OneTripFixedWindow(FixedWindowRateLimiter):
    def __init__(self, storage: Any):
        super().__init__(storage)
        # Registered once; the script is sent by hash (EVALSHA) after its first use.
        redis = isinstance(storage, RedisStorage)
        self._hit = storage.get_connection().register_script(_HIT) if redis else None

    def hit(self, item: RateLimitItem, *identifiers: str, cost: int = 1) -> bool:
        if self._hit is None:
            return super().hit(item, *identifiers, cost=cost)
        key = item.key_for(*identifiers)
        storage = cast(RedisStorage, self.storage)
        count, pttl = self._hit([storage.prefixed_key(key)], [item.get_expiry(), cost])
        _windows()[key] = (time.time() + max(int(pttl), 0) / 1000, int(count))
        return int(count) <= item.amount

    def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        seen = _windows().get(item.key_for(*identifiers))
        if seen is None:  # no hit of this limit in this request: ask the storage
            return super().get_window_stats(item, *identifiers)
        reset, count = seen
        return WindowStats(reset, max(0, item.amount - count))


STRATEGIES[ONE_TRIP] = OneTripFixedWindow

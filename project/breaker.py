"""A circuit breaker: after a dependency failed, calls to it fail at once for a while.

A hung dependency (a Redis under SIGSTOP, a host that vanished in a failover) costs every
call its full timeout; with many calls per request and per second that holds the whole web
tier. The breaker remembers the failure for `open_seconds`: during that window callers are
refused without a round trip (they take their fallback: the database, the memory limiter,
the safety net), and once it has passed the next call tries again. A success closes it.

State is per process (each gunicorn worker, RQ worker and scheduler keeps its own), so a
hang costs each process about one timeout per window, not one per request. When the window
ends, the calls in flight at that moment (one per thread at most) may each pay a timeout
before the breaker opens again.
"""

from __future__ import annotations

import threading
import time


class CircuitBreaker:
    def __init__(self, open_seconds: float) -> None:
        self.open_seconds = open_seconds
        self._open_until = 0.0  # time.monotonic(); 0: closed
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self._open_until

    def allow(self) -> bool:
        """May a call go out now? False while open (the caller fails fast)."""
        return not self.is_open

    def failure(self) -> None:
        """The dependency failed (a timeout, a refused connection): open for a window."""
        with self._lock:
            self._open_until = time.monotonic() + self.open_seconds

    def success(self) -> None:
        """The dependency answered: closed."""
        if self._open_until:
            with self._lock:
                self._open_until = 0.0

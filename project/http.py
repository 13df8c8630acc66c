"""The one way to build an HTTP client of an upstream API: a shared `requests.Session` per
base URL with connection pooling and retries on connection errors (and 502/503/504).

For an upstream a request waits on (the posts proxy): `get_within` bounds the whole call,
connection retries and a body that trickles in included, by one deadline; `Circuits` keep
a failing resource from being called again for a few seconds, so requests are answered at
once (stale copy or 502) instead of each holding a thread for the timeout.
"""

from __future__ import annotations

import threading
import time

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

_sessions: dict[str, requests.Session] = {}
_lock = threading.Lock()


def build_session(retries: int = 3, backoff: float = 0.2) -> requests.Session:
    retry = Retry(
        total=retries,
        connect=retries,
        read=0,
        status=retries,
        status_forcelist=(502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        backoff_factor=backoff,
        raise_on_status=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=4, pool_maxsize=16)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Accept"] = "application/json"
    return session


def shared_session(name: str, retries: int = 3) -> requests.Session:
    """One session per upstream for the life of the process (keep-alive, pooled)."""
    with _lock:
        if name not in _sessions:
            _sessions[name] = build_session(retries)
        return _sessions[name]


CONNECT_ATTEMPTS = 3
CHUNK_BYTES = 64 * 1024
_clock = time.monotonic


class DeadlineExceeded(requests.Timeout):
    """The call as a whole took longer than its deadline."""


def get_within(session: requests.Session, url: str, seconds: float) -> requests.Response:
    """GET `url` with the body read, all within `seconds`: each connection attempt and each
    read waits at most what is left, so neither retries nor a body sent a byte at a time
    stretch the call. `session` must not retry by itself (`shared_session(name, retries=0)`)."""
    deadline = _clock() + seconds

    def left() -> float:
        remaining = deadline - _clock()
        if remaining <= 0:
            raise DeadlineExceeded(f"no answer within {seconds} s")
        return remaining

    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            response = session.get(url, timeout=left(), stream=True)
            break
        except requests.ConnectionError:
            if attempt == CONNECT_ATTEMPTS:
                raise
            time.sleep(min(0.1 * attempt, left()))
    try:
        chunks = []
        while True:
            sock = getattr(response.raw.connection, "sock", None)
            if sock is not None:
                sock.settimeout(left())
            chunk = response.raw.read1(CHUNK_BYTES, decode_content=True)
            if not chunk:
                break
            chunks.append(chunk)
            left()
    except requests.RequestException:  # our deadline (an OSError too: let it pass as it is)
        response.close()
        raise
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        # Read straight from urllib3, so its own errors (a read timeout, a reset or short body)
        # come unwrapped: give callers the requests error they handle, as requests would.
        response.close()
        raise requests.ConnectionError(f"the body did not arrive: {exc.__class__.__name__}") from exc
    except BaseException:
        response.close()
        raise
    response._content = b"".join(chunks)  # what `response.content` and `.json()` read
    return response


class Circuits:
    """Per-resource circuit breakers of one upstream (in this process).

    `trip(key)` after a failed call opens the key's circuit for `seconds`; while it is open,
    `is_open(key)` is true and the caller answers without calling the upstream. Held per
    app (`app.extensions`), bounded in size: expired entries go when it fills.
    """

    MAX_KEYS = 10_000

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._open_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def is_open(self, key: str) -> bool:
        until = self._open_until.get(key)
        return until is not None and until > _clock()

    def trip(self, key: str) -> None:
        now = _clock()
        with self._lock:
            if len(self._open_until) >= self.MAX_KEYS:
                self._open_until = {k: t for k, t in self._open_until.items() if t > now}
            if len(self._open_until) < self.MAX_KEYS:
                self._open_until[key] = now + self.seconds

    def close(self, key: str) -> None:
        self._open_until.pop(key, None)

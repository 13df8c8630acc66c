"""The one way to build an HTTP client of an upstream API: a shared `requests.Session` per
base URL with connection pooling and retries on connection errors (and 502/503/504)."""

from __future__ import annotations

import threading

import requests
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


def shared_session(name: str) -> requests.Session:
    """One session per upstream for the life of the process (keep-alive, pooled)."""
    with _lock:
        if name not in _sessions:
            _sessions[name] = build_session()
        return _sessions[name]

"""The one cache-key and invalidation helper.

Keys are `<namespace>:v<version>:<kind>:<normalised args>`. A write calls `bump(namespace)`:
one INCR, after which every earlier key of the namespace is unreachable (and expires by its
TTL) - no key scans. Versions live in Redis beside the entries (or in this process with the
in-process SimpleCache), and start from the clock, so a lost counter never brings back keys
written under an earlier number.

Any cache failure (Redis down, a bad entry) is logged, counted (`cache_requests_total`,
result "error") and the value is computed from the source instead: the cache makes requests
faster, never makes them fail.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app

from project.errors import UpstreamError
from project.extensions import cache, redis_client
from project.metrics import record_cache

log = logging.getLogger(__name__)

HIT, MISS, STALE = "HIT", "MISS", "STALE"
MAX_READABLE_KEY = 200
STALE_FOR_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Cached:
    """A value and where it came from, for the `X-Cache` header."""

    value: Any
    status: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Cache": self.status}


def _failed(namespace: str, action: str, exc: Exception) -> None:
    log.warning("cache %s failed for %s: %s: %s", action, namespace, exc.__class__.__name__, exc)
    record_cache(namespace, "error")


def _version_key(namespace: str) -> str:
    return f"{current_app.config.get('CACHE_KEY_PREFIX', '')}version:{namespace}"


def _local_versions() -> dict[str, int]:
    return current_app.extensions.setdefault("cache_versions", {})


def namespace_version(namespace: str) -> int | None:
    """The namespace's current version; None when it cannot be read (the cache is skipped)."""
    client = redis_client.client
    if client is None:
        return _local_versions().setdefault(namespace, 0)
    key = _version_key(namespace)
    try:
        value = client.get(key)
        if value is None:
            client.set(key, time.time_ns() // 1000, nx=True)
            value = client.get(key)
        return int(value or 0)
    except Exception as exc:
        _failed(namespace, "version read", exc)
        return None


def bump(namespace: str) -> None:
    """Invalidate every cached entry of `namespace` (O(1)). Call after the write commits."""
    client = redis_client.client
    if client is None:
        versions = _local_versions()
        versions[namespace] = versions.get(namespace, 0) + 1
        return
    key = _version_key(namespace)
    try:
        pipe = client.pipeline()
        pipe.set(key, time.time_ns() // 1000, nx=True)
        pipe.incr(key)
        pipe.execute()
    except Exception as exc:
        # Entries written before the outage may be served until their TTL runs out.
        log.error("cache invalidation of %s failed: %s", namespace, exc.__class__.__name__)
        record_cache(namespace, "error")


def cache_key(namespace: str, version: int | None, kind: str, params: Mapping[str, Any] | None = None) -> str:
    """A stable key: parameters sorted, None dropped, long keys hashed."""
    args = "&".join(f"{name}={value}" for name, value in sorted((params or {}).items()) if value is not None)
    if len(args) > MAX_READABLE_KEY:
        args = "sha256=" + hashlib.sha256(args.encode()).hexdigest()
    prefix = namespace if version is None else f"{namespace}:v{version}"
    return f"{prefix}:{kind}:{args}"


def _get(namespace: str, key: str) -> Any:
    try:
        return cache.get(key)
    except Exception as exc:
        _failed(namespace, "get", exc)
        return None


def _set(namespace: str, key: str, value: Any, timeout: int | None) -> None:
    try:
        cache.set(key, value, timeout=timeout)
    except Exception as exc:
        _failed(namespace, "set", exc)


def cached(
    namespace: str,
    kind: str,
    params: Mapping[str, Any] | None,
    compute: Callable[[], Any],
    timeout: int | None = None,
) -> Cached:
    """`compute()` once per namespace version and parameters; None values are not cached."""
    version = namespace_version(namespace)
    if version is None:
        return Cached(compute(), MISS)
    key = cache_key(namespace, version, kind, params)
    value = _get(namespace, key)
    if value is not None:
        record_cache(namespace, "hit")
        return Cached(value, HIT)
    record_cache(namespace, "miss")
    value = compute()
    if value is not None:
        _set(namespace, key, value, timeout)
    return Cached(value, MISS)


def cached_upstream(
    namespace: str,
    kind: str,
    params: Mapping[str, Any] | None,
    fetch: Callable[[], Any],
    ttl: int,
    stale_for: int = STALE_FOR_SECONDS,
) -> Cached:
    """An upstream answer, fresh for `ttl` seconds; when the upstream fails (UpstreamError),
    a copy up to `stale_for` seconds past its TTL is served as STALE."""
    key = cache_key(namespace, None, kind, params)
    entry = _get(namespace, key)
    if isinstance(entry, dict) and time.time() - entry["fetched_at"] < ttl:
        record_cache(namespace, "hit")
        return Cached(entry["value"], HIT)
    try:
        value = fetch()
    except UpstreamError:
        if isinstance(entry, dict):
            record_cache(namespace, "stale")
            log.warning("upstream failed; serving a stale copy of %s", key)
            return Cached(entry["value"], STALE)
        raise
    record_cache(namespace, "miss")
    _set(namespace, key, {"fetched_at": time.time(), "value": value}, ttl + stale_for)
    return Cached(value, MISS)

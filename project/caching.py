"""The one cache-key and invalidation helper.

A write calls `bump(namespace)`: one INCR, after which every earlier entry of the namespace
is stale - no key scans. Versions live in Redis beside the entries (or in this process with
the in-process SimpleCache), and start from the clock, so a lost counter never brings back
entries written under an earlier number.

Two kinds of entries:
- `cached_response` (route decorator, the hot path): the response body as sent, under a key
  made of the raw query (known parameters only) and path arguments, stamped with the
  namespace version and its ETag. A HIT is ONE Redis round trip (MGET of the version and the
  entry: the entry is current when its stamp equals the version), then the stored bytes go
  out as they are: no argument parsing, no schema, no database. `If-None-Match` matching the
  ETag is a 304 with no body.
- `cached` / `cached_upstream`: a computed value (a count, an upstream answer) under
  `<namespace>:v<version>:<kind>:<normalised args>`.

Any cache failure (Redis down, a bad entry) is logged, counted (`cache_requests_total`,
result "error") and the value is computed from the source instead: the cache makes requests
faster, never makes them fail.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from typing import Any, cast
from urllib.parse import urlencode

from flask import Response, current_app, g, request
from marshmallow import Schema

from project.errors import UpstreamError
from project.extensions import cache, redis_client
from project.inputs import query_values
from project.metrics import record_cache
from project.pagination import link_header, page_numbers

log = logging.getLogger(__name__)

HIT, MISS, STALE = "HIT", "MISS", "STALE"
MAX_READABLE_KEY = 200
STALE_FOR_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Cached:
    """A value and where it came from, for the `X-Cache` header."""

    value: Any
    status: str
    # For upstream answers: seconds the value stays fresh (a response cache keeps it no longer).
    fresh_for: float | None = None

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
    if _pending_bumps() and not flush_pending_bumps():
        return None  # an invalidation of ours is still owed: the cache cannot be trusted yet
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


def _pending_bumps() -> set[str]:
    """Namespaces whose bump failed in this process (Redis down, failing over)."""
    return current_app.extensions.setdefault("cache_pending_bumps", set())


def bump(namespace: str) -> None:
    """Invalidate every cached entry of `namespace` (O(1)). Call after the write commits.

    The client retries a lost or demoted master for a few seconds (redis_client), which
    rides through a Sentinel failover, so the write answers after its invalidation. When
    Redis stays away longer, the namespace is remembered and bumped the first time this
    process reaches Redis again (`flush_pending_bumps`): the entries written before the
    write (which a restarted or promoted Redis may still hold) are then never current again.
    """
    client = redis_client.client
    if client is None:
        versions = _local_versions()
        versions[namespace] = versions.get(namespace, 0) + 1
        return
    try:
        _incr_version(client, namespace)
    except Exception as exc:
        log.error("cache invalidation of %s failed: %s", namespace, exc.__class__.__name__)
        record_cache(namespace, "error")
        _pending_bumps().add(namespace)
    else:
        _pending_bumps().discard(namespace)


def _incr_version(client: Any, namespace: str) -> None:
    key = _version_key(namespace)
    pipe = client.pipeline()
    pipe.set(key, time.time_ns() // 1000, nx=True)
    pipe.incr(key)
    pipe.execute()


def flush_pending_bumps() -> bool:
    """Bump what failed to bump earlier; True when nothing is left pending."""
    pending = _pending_bumps()
    client = redis_client.client
    for namespace in sorted(pending):
        try:
            _incr_version(client, namespace)
        except Exception as exc:
            _failed(namespace, "pending bump", exc)
            return False
        pending.discard(namespace)
        log.warning("cache invalidation of %s done after Redis came back", namespace)
    return True


def _readable(args: str) -> str:
    """Key arguments as they are while short enough to read, else their hash."""
    if len(args) > MAX_READABLE_KEY:
        return "sha256=" + hashlib.sha256(args.encode()).hexdigest()
    return args


def cache_key(namespace: str, version: int | None, kind: str, params: Mapping[str, Any] | None = None) -> str:
    """A stable key: parameters sorted, None dropped, long keys hashed."""
    args = _readable(
        "&".join(f"{name}={value}" for name, value in sorted((params or {}).items()) if value is not None)
    )
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
    age = time.time() - entry["fetched_at"] if isinstance(entry, dict) else None
    if age is not None and age < ttl:
        record_cache(namespace, "hit")
        return Cached(entry["value"], HIT, ttl - age)
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
    return Cached(value, MISS, ttl)


# --- whole responses (the hot path) ----------------------------------------------------


def answer(result: Cached) -> tuple[Any, int, dict[str, str]]:
    """A route's return for a `Cached` value: the value, 200 and `X-Cache`; tells
    `cached_response` how long the value stays fresh."""
    g.cache_fresh_for = result.fresh_for
    return result.value, 200, result.headers


def _query_names(schema: type[Schema] | None) -> frozenset[str]:
    if schema is None:
        return frozenset()
    return frozenset(field.data_key or name for name, field in schema().fields.items())


def response_key(namespace: str, kind: str, names: frozenset[str], path_args: Mapping[str, Any]) -> str:
    """The request as a key: path arguments and the known query parameters with the one value
    each that the route reads (`inputs.query_values`: a known parameter given twice is a 422
    before any lookup, so `?a=1&a=2` and `?a=2&a=1` can never share an entry), sorted and
    percent-encoded (so no value can pass for another parameter). Unknown parameters are
    left out, as the route ignores them; spellings that parse alike (`LAMPS`, `lamps`) get
    entries of their own, which is cheaper than parsing on every HIT."""
    pairs = sorted(path_args.items())
    if names and request.environ.get("QUERY_STRING"):  # else no query to parse
        pairs += sorted(query_values(request.args, names).items())
    args = _readable(urlencode(pairs))
    return f"{current_app.config.get('CACHE_KEY_PREFIX', '')}response:{namespace}:{kind}:{args}"


def _lookup(namespace: str, key: str, versioned: bool) -> tuple[int | None, bytes | None]:
    """The namespace version and the stored entry, in one round trip; (None, None) when the
    cache cannot be read (then nothing is stored either)."""
    client = redis_client.client
    try:
        if client is None:
            return (_local_versions().setdefault(namespace, 0) if versioned else 0), cache.get(key)
        if not versioned:
            return 0, cast("bytes | None", redis_client.command("GET", key))  # bytes
        if _pending_bumps() and not flush_pending_bumps():
            return None, None
        version, entry = redis_client.command("MGET", _version_key(namespace), key)
    except Exception as exc:
        _failed(namespace, "get", exc)
        return None, None
    if version is None:  # a new (or flushed) Redis: start the counter
        return namespace_version(namespace), None
    return int(version), cast("bytes | None", entry)


def _current(entry: bytes | None, version: int) -> tuple[str, bytes, bytes] | None:
    """(etag, body, page numbers) of an entry stamped with `version`; None for a stale or
    damaged one. The head is `<version> <etag>[ <page>,<per_page>,<pages>]`: a page keeps the
    numbers its `Link` header is rebuilt from (its other parameters come from the request)."""
    if not entry:
        return None
    head, _, body = entry.partition(b"\n")
    stamp, _, rest = head.partition(b" ")
    etag, _, numbers = rest.partition(b" ")
    if not etag or stamp != b"%d" % version:
        return None
    return etag.decode(), body, numbers


def _page_link(numbers: bytes) -> str | None:
    try:
        page, per_page, pages = (int(n) for n in numbers.split(b","))
    except ValueError:
        return None
    return link_header(page, per_page, pages)


def _store(namespace: str, key: str, version: int, etag: str, body: bytes, seconds: float) -> None:
    numbers = page_numbers()
    page = b" %d,%d,%d" % numbers if numbers else b""
    entry = b"%d %s%s\n" % (version, etag.encode(), page) + body
    client = redis_client.client
    try:
        if client is None:
            cache.set(key, entry, timeout=math.ceil(seconds))
        else:
            client.set(key, entry, px=max(1, int(seconds * 1000)))
    except Exception as exc:
        _failed(namespace, "set", exc)


def _finish(response: Response, etag: str, status: str) -> Response:
    response.headers["ETag"] = f'"{etag}"'
    response.headers["X-Cache"] = status
    if "HTTP_IF_NONE_MATCH" in request.environ and request.if_none_match.contains_weak(etag):
        response.status_code = 304
        response.set_data(b"")
        del response.headers["Content-Type"]
    return response


def cached_response(
    namespace: str,
    kind: str,
    ttl_setting: str,
    query: type[Schema] | None = None,
    versioned: bool = True,
) -> Callable:
    """Route decorator, outermost (above `@blp.arguments`): answers a 200 from the cache.

    `query`: the route's query schema (which parameters make the key); `ttl_setting`: the
    config key of the entries' lifetime; `versioned=False` for namespaces without writes
    (their freshness comes from `answer()`). Errors and non-200 answers are never stored.
    """
    names = _query_names(query)

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            key = response_key(namespace, kind, names, kwargs)
            version, entry = _lookup(namespace, key, versioned)
            stored = _current(entry, version) if version is not None else None
            if stored is not None:
                record_cache(namespace, "hit")
                etag, body, numbers = stored
                response = current_app.response_class(body, mimetype="application/json")
                if numbers and (link := _page_link(numbers)):
                    response.headers["Link"] = link
                return _finish(response, etag, HIT)
            g.cache_fresh_for = None
            response = current_app.make_response(view(*args, **kwargs))
            if response.status_code != 200:
                return response
            status = response.headers.get("X-Cache")
            if status is None:  # the view has no cache of its own (else it counted already)
                record_cache(namespace, "miss")
                status = MISS
            body = response.get_data()
            etag = hashlib.blake2b(body, digest_size=16).hexdigest()
            seconds = current_app.config[ttl_setting]
            if g.cache_fresh_for is not None:
                seconds = min(seconds, g.cache_fresh_for)
            if version is not None and status != STALE and seconds > 0:
                _store(namespace, key, version, etag, body, seconds)
            return _finish(response, etag, status)

        return wrapper

    return decorator

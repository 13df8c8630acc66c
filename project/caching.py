"""The response and value cache: one key scheme, invalidation by namespace.

Names, one per concept:
- a *namespace* is a string naming what a write changes ("products", or one derived from a
  route's arguments such as "product:42:reviews"); `invalidate(*namespaces)` after the write
  commits makes every earlier entry depending on any of them stale: one INCR each, no key
  scans. Versions live in Redis beside the entries (or in this process with the in-process
  SimpleCache), and start from the clock, so a lost counter never brings back entries written
  under an earlier number.
- `@cached_route(...)` (route decorator, the hot path): the response body as sent, under a key
  made of the raw query (known parameters only) and path arguments, stamped with the versions
  of the namespaces it depends on and its ETag. A HIT is ONE Redis round trip (MGET of the
  versions and the entry: the entry is current when its stamp equals the versions), then the
  stored bytes go out as they are: no argument parsing, no schema, no database.
  `If-None-Match` matching the ETag is a 304 with no body.
- `cached_value` / `cached_upstream`: a computed value (a count, an upstream answer) under
  `<namespace>:v<version>:<kind>:<normalised args>`; both return a `CacheResult`.

Any cache failure (Redis down, a bad entry) is logged, counted (`cache_requests_total`,
result "error") and the value is computed from the source instead: the cache makes requests
faster, never makes them fail.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any, cast
from urllib.parse import urlencode

from flask import Response, current_app, request
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
# How long a view's answer stays fresh, from the view (`CacheResult.reply`) to `cached_route`,
# which takes it off the response: it is never sent.
FRESH_FOR_HEADER = "X-Cache-Fresh-For"

# A namespace a route depends on: a name, or a function of the view's path arguments giving one.
NamespaceOf = str | Callable[..., str]


@dataclass(frozen=True)
class CacheResult:
    """A value and where it came from (`status`, for the `X-Cache` header)."""

    value: Any
    status: str
    # For upstream answers: seconds the value stays fresh (a response cache keeps it no longer).
    fresh_for: float | None = None

    def reply(self) -> tuple[Any, int, dict[str, str]]:
        """A cached route's return: the value, 200, `X-Cache`, and how long it stays fresh."""
        headers = {"X-Cache": self.status}
        if self.fresh_for is not None:
            headers[FRESH_FOR_HEADER] = repr(self.fresh_for)
        return self.value, 200, headers


def _failed(namespace: str, action: str, exc: Exception) -> None:
    log.warning("cache %s failed for %s: %s: %s", action, namespace, exc.__class__.__name__, exc)
    record_cache(namespace, "error")


# --- namespaces and their versions ---------------------------------------------------------


def _version_key(namespace: str) -> str:
    return f"{current_app.config.get('CACHE_KEY_PREFIX', '')}version:{namespace}"


def _local_versions() -> dict[str, int]:
    return current_app.extensions.setdefault("cache_versions", {})


def _pending_invalidations() -> set[str]:
    """Namespaces whose invalidation failed in this process (Redis down, failing over)."""
    return current_app.extensions.setdefault("cache_pending_bumps", set())


def _namespace_version(namespace: str) -> int | None:
    """The namespace's current version; None when it cannot be read (the cache is skipped)."""
    client = redis_client.client
    if client is None:
        return _local_versions().setdefault(namespace, 0)
    if _pending_invalidations() and not _flush_pending_invalidations():
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


def invalidate(*namespaces: str) -> None:
    """Make every cached entry depending on any of `namespaces` stale (O(1) each). Call after
    the write commits.

    The client retries a lost or demoted master for a few seconds (redis_client), which
    rides through a Sentinel failover, so the write answers after its invalidation. When
    Redis stays away longer, the namespace is remembered and invalidated the first time this
    process reaches Redis again (`_flush_pending_invalidations`): the entries written before
    the write (which a restarted or promoted Redis may still hold) are then never current again.
    """
    client = redis_client.client
    for namespace in namespaces:
        if client is None:
            versions = _local_versions()
            versions[namespace] = versions.get(namespace, 0) + 1
            continue
        try:
            _incr_version(client, namespace)
        except Exception as exc:
            log.error("cache invalidation of %s failed: %s", namespace, exc.__class__.__name__)
            record_cache(namespace, "error")
            _pending_invalidations().add(namespace)
        else:
            _pending_invalidations().discard(namespace)


def _incr_version(client: Any, namespace: str) -> None:
    key = _version_key(namespace)
    pipe = client.pipeline()
    pipe.set(key, time.time_ns() // 1000, nx=True)
    pipe.incr(key)
    pipe.execute()


def _flush_pending_invalidations() -> bool:
    """Invalidate what failed to be invalidated earlier; True when nothing is left pending."""
    pending = _pending_invalidations()
    client = redis_client.client
    for namespace in sorted(pending):
        try:
            _incr_version(client, namespace)
        except Exception as exc:
            _failed(namespace, "pending invalidation", exc)
            return False
        pending.discard(namespace)
        log.warning("cache invalidation of %s done after Redis came back", namespace)
    return True


# --- computed values -------------------------------------------------------------------------


def _readable(args: str) -> str:
    """Key arguments as they are while short enough to read, else their hash."""
    if len(args) > MAX_READABLE_KEY:
        return "sha256=" + hashlib.sha256(args.encode()).hexdigest()
    return args


def _value_key(namespace: str, version: int | None, kind: str, params: Mapping[str, Any] | None) -> str:
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


def cached_value(
    namespace: str,
    kind: str,
    params: Mapping[str, Any] | None,
    compute: Callable[[], Any],
    timeout: int | None = None,
) -> CacheResult:
    """`compute()` once per namespace version and parameters; None values are not cached."""
    version = _namespace_version(namespace)
    if version is None:
        return CacheResult(compute(), MISS)
    key = _value_key(namespace, version, kind, params)
    value = _get(namespace, key)
    if value is not None:
        record_cache(namespace, "hit")
        return CacheResult(value, HIT)
    record_cache(namespace, "miss")
    value = compute()
    if value is not None:
        _set(namespace, key, value, timeout)
    return CacheResult(value, MISS)


def cached_upstream(
    namespace: str,
    kind: str,
    params: Mapping[str, Any] | None,
    fetch: Callable[[], Any],
    ttl: int,
    stale_for: int = STALE_FOR_SECONDS,
) -> CacheResult:
    """An upstream answer, fresh for `ttl` seconds; when the upstream fails (UpstreamError),
    a copy up to `stale_for` seconds past its TTL is served as STALE."""
    key = _value_key(namespace, None, kind, params)
    entry = _get(namespace, key)
    age = time.time() - entry["fetched_at"] if isinstance(entry, dict) else None
    if age is not None and age < ttl:
        record_cache(namespace, "hit")
        return CacheResult(entry["value"], HIT, ttl - age)
    try:
        value = fetch()
    except UpstreamError:
        if isinstance(entry, dict):
            record_cache(namespace, "stale")
            log.warning("upstream failed; serving a stale copy of %s", key)
            return CacheResult(entry["value"], STALE)
        raise
    record_cache(namespace, "miss")
    _set(namespace, key, {"fetched_at": time.time(), "value": value}, ttl + stale_for)
    return CacheResult(value, MISS, ttl)


# --- whole responses (the hot path) ----------------------------------------------------


def _query_names(schema: type[Schema] | None) -> frozenset[str]:
    if schema is None:
        return frozenset()
    return frozenset(field.data_key or name for name, field in schema().fields.items())


def _response_key(name: str, kind: str, names: frozenset[str], path_args: Mapping[str, Any]) -> str:
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
    return f"{current_app.config.get('CACHE_KEY_PREFIX', '')}response:{name}:{kind}:{args}"


def _stamp(versions: Sequence[int]) -> bytes:
    """The versions an entry was stored under, as its head spells them ("-" for none)."""
    return b".".join(b"%d" % version for version in versions) or b"-"


def _lookup(name: str, namespaces: Sequence[str], key: str) -> tuple[bytes | None, bytes | None]:
    """The stamp the namespaces' versions make now and the stored entry, in one round trip;
    (None, None) when the cache cannot be read (then nothing is stored either)."""
    client = redis_client.client
    try:
        if client is None:
            local = _local_versions()
            return _stamp([local.setdefault(namespace, 0) for namespace in namespaces]), cache.get(key)
        if not namespaces:
            return _stamp(()), cast("bytes | None", redis_client.command("GET", key))
        if _pending_invalidations() and not _flush_pending_invalidations():
            return None, None
        *versions, entry = redis_client.command("MGET", *map(_version_key, namespaces), key)
    except Exception as exc:
        _failed(name, "get", exc)
        return None, None
    if any(version is None for version in versions):  # a new (or flushed) Redis: start the counters
        started = [_namespace_version(namespace) for namespace in namespaces]
        if any(version is None for version in started):
            return None, None
        return _stamp(cast("list[int]", started)), None
    return _stamp([int(version) for version in versions]), cast("bytes | None", entry)


def _current(entry: bytes | None, stamp: bytes) -> tuple[str, bytes, bytes] | None:
    """(etag, body, page numbers) of an entry stored under `stamp`; None for a stale or
    damaged one. The head is `<stamp> <etag>[ <page>,<per_page>,<pages>]`: a page keeps the
    numbers its `Link` header is rebuilt from (its other parameters come from the request)."""
    if not entry:
        return None
    head, _, body = entry.partition(b"\n")
    stored_stamp, _, rest = head.partition(b" ")
    etag, _, numbers = rest.partition(b" ")
    if not etag or stored_stamp != stamp:
        return None
    return etag.decode(), body, numbers


def _page_link(numbers: bytes) -> str | None:
    try:
        page, per_page, pages = (int(n) for n in numbers.split(b","))
    except ValueError:
        return None
    return link_header(page, per_page, pages)


def _store(name: str, key: str, stamp: bytes, etag: str, body: bytes, seconds: float) -> None:
    numbers = page_numbers()
    page = b" %d,%d,%d" % numbers if numbers else b""
    entry = b"%s %s%s\n" % (stamp, etag.encode(), page) + body
    client = redis_client.client
    try:
        if client is None:
            cache.set(key, entry, timeout=math.ceil(seconds))
        else:
            client.set(key, entry, px=max(1, int(seconds * 1000)))
    except Exception as exc:
        _failed(name, "set", exc)


def _finish(response: Response, etag: str, status: str) -> Response:
    response.headers["ETag"] = f'"{etag}"'
    response.headers["X-Cache"] = status
    if "HTTP_IF_NONE_MATCH" in request.environ and request.if_none_match.contains_weak(etag):
        response.status_code = 304
        response.set_data(b"")
        del response.headers["Content-Type"]
    return response


def _namespaces_of(depends_on: Sequence[NamespaceOf], path_args: Mapping[str, Any]) -> list[str]:
    return [namespace if isinstance(namespace, str) else namespace(**path_args) for namespace in depends_on]


def cached_route(
    name: str,
    kind: str,
    ttl_setting: str,
    query: type[Schema] | None = None,
    depends_on: Sequence[NamespaceOf] | None = None,
) -> Callable:
    """Route decorator, outermost (above `@blp.arguments`): answers a 200 from the cache.

    `name` labels the entries' keys and metrics; `kind` tells the route's entries apart;
    `ttl_setting`: the config key of the entries' lifetime; `query`: the route's query schema
    (which parameters make the key). `depends_on`: the namespaces whose `invalidate()` makes
    an entry stale, each a name or a function of the view's path arguments
    (`lambda product_id: f"product:{product_id}:reviews"`); by default `[name]`. `()` for
    entries no write changes: their freshness comes from the view's `CacheResult.reply()`.
    Errors and non-200 answers are never stored.
    """
    names = _query_names(query)
    namespaces: tuple[NamespaceOf, ...] = (name,) if depends_on is None else tuple(depends_on)

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            key = _response_key(name, kind, names, kwargs)
            stamp, entry = _lookup(name, _namespaces_of(namespaces, kwargs), key)
            stored = _current(entry, stamp) if stamp is not None else None
            if stored is not None:
                record_cache(name, "hit")
                return _from_entry(*stored)
            response = current_app.make_response(view(*args, **kwargs))
            return _from_view(response, name, key, stamp, current_app.config[ttl_setting])

        return wrapper

    return decorator


def _from_entry(etag: str, body: bytes, numbers: bytes) -> Response:
    """A HIT: the stored bytes as they are, the page's `Link` rebuilt from its numbers."""
    response = current_app.response_class(body, mimetype="application/json")
    if numbers and (link := _page_link(numbers)):
        response.headers["Link"] = link
    return _finish(response, etag, HIT)


def _from_view(response: Response, name: str, key: str, stamp: bytes | None, ttl: float) -> Response:
    """A MISS (or the view's own HIT/STALE): a 200 is stored under `stamp` for `ttl` seconds,
    or for as long as the view said its value stays fresh, if shorter; a STALE copy never is."""
    fresh_for = response.headers.pop(FRESH_FOR_HEADER, None)
    if response.status_code != 200:
        return response
    status = response.headers.get("X-Cache")
    if status is None:  # the view has no cache of its own (else it counted already)
        record_cache(name, "miss")
        status = MISS
    body = response.get_data()
    etag = hashlib.blake2b(body, digest_size=16).hexdigest()
    seconds = ttl if fresh_for is None else min(ttl, float(fresh_for))
    if stamp is not None and status != STALE and seconds > 0:
        _store(name, key, stamp, etag, body, seconds)
    return _finish(response, etag, status)

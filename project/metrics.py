"""Prometheus metrics: the one home of every counter and histogram.

With several gunicorn workers, set `PROMETHEUS_MULTIPROC_DIR` (gunicorn.conf.py does) so
that /metrics adds up every worker's figures.
"""

from __future__ import annotations

import logging
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CACHE_REQUESTS = Counter(
    "cache_requests_total", "Cache lookups by namespace and result", ["namespace", "result"]
)
QUEUE_DEPTH = Gauge("rq_queue_depth", "Jobs waiting per RQ queue", ["queue"], multiprocess_mode="livemax")

# A path that matched no route: one label value, whatever the client sent.
UNMATCHED = "<unmatched>"


def record_cache(namespace: str, result: str) -> None:
    """result: "hit", "miss", "stale" or "error"."""
    CACHE_REQUESTS.labels(namespace=namespace, result=result).inc()


def record_request(method: str, endpoint: str | None, status: int, seconds: float) -> None:
    """`endpoint` is the URL rule (`/api/v1/users/<int:user_id>`), never the raw path."""
    endpoint = endpoint or UNMATCHED
    HTTP_REQUESTS.labels(method=method, endpoint=endpoint, status=str(status)).inc()
    HTTP_LATENCY.labels(method=method, endpoint=endpoint).observe(seconds)


def record_queue_depths(depths: dict[str, int]) -> None:
    for queue, depth in depths.items():
        QUEUE_DEPTH.labels(queue=queue).set(depth)


def render() -> tuple[bytes, str]:
    """The exposition text of this process, or of every worker in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST

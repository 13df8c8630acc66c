"""Prometheus metrics: the one home of every counter and histogram.

With several gunicorn workers, set `PROMETHEUS_MULTIPROC_DIR` (gunicorn.conf.py does) so
that /metrics adds up every worker's figures.
"""

from prometheus_client import Counter, Gauge, Histogram

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


def record_cache(namespace: str, result: str) -> None:
    """result: "hit", "miss", "stale" or "error"."""
    CACHE_REQUESTS.labels(namespace=namespace, result=result).inc()

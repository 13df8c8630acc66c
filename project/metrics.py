"""Prometheus metrics: the one home of every counter and histogram.

Where each process's figures are read:
- gunicorn (the API): `GET /metrics`. Every worker is its own process, so gunicorn.conf.py
  sets `PROMETHEUS_MULTIPROC_DIR` and /metrics adds up every worker's files; the process
  metrics (`process_*`: CPU, memory, file descriptors) are the sum over the gunicorn master
  and its live workers, read from /proc at scrape time.
- `python worker.py` (job metrics) and `python grpc_server.py` (gRPC metrics): their own
  small HTTP endpoint on `METRICS_PORT` (off when unset; `serve_process_metrics`), with the
  standard process and Python collectors of that process. With several gRPC processes
  (GRPC_WORKERS > 1) the parent sets `PROMETHEUS_MULTIPROC_DIR` for its children and serves
  the sum of their files, and `process_*` summed over itself and its live children.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import Metric

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
JOB_RUNS = Counter("rq_job_runs_total", "Job runs by function, queue and status", ["job", "queue", "status"])
JOB_DURATION = Histogram(
    "rq_job_duration_seconds",
    "Job run time by function",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total", "gRPC calls by method and status code", ["grpc_method", "grpc_code"]
)
GRPC_LATENCY = Histogram(
    "grpc_server_handling_seconds",
    "gRPC call latency by method",
    ["grpc_method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)

# A path that matched no route: one label value, whatever the client sent.
UNMATCHED = "<unmatched>"
# The pids of a server's processes, read at each scrape.
Pids = Callable[[], Iterable[int]]


# Label children by their label values: `.labels()` validates and locks on every call, and the
# hot paths record the same few combinations again and again.
_CACHE_CHILDREN: dict[tuple[str, str], Any] = {}
_REQUEST_CHILDREN: dict[tuple[str, str | None, int], tuple[Any, Any]] = {}
# Methods are the client's words: any other is counted as one label value.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def record_cache(namespace: str, result: str) -> None:
    """result: "hit", "miss", "stale" or "error"."""
    child = _CACHE_CHILDREN.get((namespace, result))
    if child is None:
        child = _CACHE_CHILDREN[namespace, result] = CACHE_REQUESTS.labels(namespace=namespace, result=result)
    child.inc()


def record_request(method: str, endpoint: str | None, status: int, seconds: float) -> None:
    """`endpoint` is the URL rule (`/api/v1/users/<int:user_id>`), never the raw path."""
    if method not in METHODS:
        method = "OTHER"
    children = _REQUEST_CHILDREN.get((method, endpoint, status))
    if children is None:
        label = endpoint or UNMATCHED
        children = _REQUEST_CHILDREN[method, endpoint, status] = (
            HTTP_REQUESTS.labels(method=method, endpoint=label, status=str(status)),
            HTTP_LATENCY.labels(method=method, endpoint=label),
        )
    children[0].inc()
    children[1].observe(seconds)


def record_queue_depths(depths: dict[str, int]) -> None:
    for queue, depth in depths.items():
        QUEUE_DEPTH.labels(queue=queue).set(depth)


def record_job(job: str, queue: str, succeeded: bool, seconds: float) -> None:
    """`job` is the job's dotted function name (bounded: the code defines them)."""
    JOB_RUNS.labels(job=job, queue=queue, status="finished" if succeeded else "failed").inc()
    JOB_DURATION.labels(job=job).observe(seconds)


def grpc_recorder(method: str) -> Callable[[str, float], None]:
    """Count one call of `method` (the full gRPC name, `/auth.AuthService/ValidateToken`) with
    its status code and latency: `record(code, seconds)`. The labelled series are looked up
    once (per method, and per code), not on every call."""
    latency = GRPC_LATENCY.labels(grpc_method=method)
    handled: dict[str, Any] = {}

    def record(code: str, seconds: float) -> None:
        counter = handled.get(code)
        if counter is None:
            counter = handled[code] = GRPC_HANDLED.labels(grpc_method=method, grpc_code=code)
        counter.inc()
        latency.observe(seconds)

    return record


def multiprocess_registry(multiproc_dir: str, pids: Pids | None = None) -> CollectorRegistry:
    """Every process's files in `multiproc_dir` added up, and `process_*` summed over `pids`
    (default: this gunicorn worker's server, see ServerProcessCollector)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    registry.register(ServerProcessCollector(multiproc_dir, pids))
    PlatformCollector(registry=registry)
    return registry


def render() -> tuple[bytes, str]:
    """The exposition text of this process, or of every worker in multiprocess mode."""
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry = multiprocess_registry(multiproc_dir) if multiproc_dir else REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST


def serve_process_metrics(
    port: int | None,
    host: str = "0.0.0.0",
    pids: Pids | None = None,
    families: tuple[str, ...] | None = None,
) -> WSGIServer | None:
    """A process outside gunicorn (worker, gRPC) serves its own /metrics on `port` (None: off).

    `pids`: this process supervises others that write to PROMETHEUS_MULTIPROC_DIR (the gRPC
    parent): serve their sum, with `process_*` summed over these pids. `families`: the name
    prefixes of the metrics this process records (`rq_`); the others, always empty here, are
    left out (`process_*` and `python_*` always stay). Returns the server."""
    if not port:
        return None
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    registry = multiprocess_registry(multiproc_dir, pids) if pids is not None and multiproc_dir else REGISTRY
    if families is not None:
        registry = only_families(registry, (*families, "process_", "python_"))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    log.info("metrics on http://%s:%s/metrics", host, port)
    return server


class _Only:
    """The metrics of `registry` whose names start with one of `prefixes`."""

    def __init__(self, registry: CollectorRegistry, prefixes: tuple[str, ...]) -> None:
        self.registry = registry
        self.prefixes = prefixes

    def collect(self) -> Iterable[Metric]:
        return (metric for metric in self.registry.collect() if metric.name.startswith(self.prefixes))


def only_families(registry: CollectorRegistry, prefixes: tuple[str, ...]) -> CollectorRegistry:
    filtered = CollectorRegistry(auto_describe=False)
    filtered.register(_Only(registry, prefixes))
    return filtered


class ServerProcessCollector:
    """`process_*` for a server in multiprocess mode: prometheus_client's per-process collector,
    summed over the server's processes (start time: the oldest; the fd limit: one process's,
    they share it). Under gunicorn: the master and its live workers (children of this worker's
    parent that wrote metrics); or the processes `pids` names."""

    def __init__(self, multiproc_dir: str, pids: Pids | None = None) -> None:
        self.multiproc_dir = multiproc_dir
        self.server_pids = pids

    def pids(self) -> list[int]:
        if self.server_pids is not None:
            return sorted(self.server_pids())
        master = os.getppid()
        pids = {os.getpid()}
        for name in os.listdir(self.multiproc_dir):
            match = re.search(r"_(\d+)\.db$", name)
            if match and _parent_of(int(match.group(1))) == master:
                pids.add(int(match.group(1)))
        if b"gunicorn" in _read(f"/proc/{master}/cmdline"):
            pids.add(master)
        return sorted(pids)

    def collect(self) -> Iterable[Metric]:
        totals: dict[str, Metric] = {}
        for pid in self.pids():
            for family in ProcessCollector(pid=_constant(pid), registry=None).collect():
                value = family.samples[0].value
                total = totals.get(family.name)
                if total is None:
                    totals[family.name] = total = family
                elif family.name == "process_start_time_seconds":
                    total.samples[0] = total.samples[0]._replace(value=min(total.samples[0].value, value))
                elif family.name != "process_max_fds":
                    total.samples[0] = total.samples[0]._replace(value=total.samples[0].value + value)
        return list(totals.values())


def _constant(pid: int) -> Callable[[], int]:
    return lambda: pid


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _parent_of(pid: int) -> int | None:
    stat = _read(f"/proc/{pid}/stat")
    return int(stat.rsplit(b")", 1)[1].split()[1]) if stat else None

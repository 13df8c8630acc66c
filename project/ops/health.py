"""Dependency checks for the health endpoints and /metrics.

Each check returns a component dict `{"status": ..., ...}`; status is "ok", "down", or
"disabled" (no REDIS_URL: the embedded setup runs cache, rate limits and jobs in-process,
so there is no Redis, queue, worker or scheduler to check, and that is not an outage).
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import text

from project.extensions import db, redis_client
from project.jobs import QUEUE_NAMES, get_queue
from project.ops.heartbeats import live_workers
from project.redis_client import REDIS_ERRORS
from project.schedule import SCHEDULER_ALIVE_KEY

log = logging.getLogger(__name__)

OK, DOWN, DISABLED = "ok", "down", "disabled"
EMBEDDED = "REDIS_URL is not set: cache, rate limits and jobs run inside the web process."
SCHEDULED_JOBS_KEY = "rq:scheduler:scheduled_jobs"
HEALTH_PROBE_KEY = "health:probe"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def check_database() -> dict:
    started = time.perf_counter()
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to answer is "down"; the error names the class only
        db.session.rollback()
        log.warning("health: database down: %s", exc.__class__.__name__)
        return {"status": DOWN, "error": f"database unreachable ({exc.__class__.__name__})"}
    finally:
        db.session.remove()
    return {"status": OK, "latency_ms": _ms(started)}


def check_redis() -> dict:
    client = redis_client.client
    if client is None:
        return {"status": DISABLED, "detail": EMBEDDED}
    started = time.perf_counter()
    try:
        # A write, not a PING: a demoted master (a failover, REPLICAOF) still answers PING and
        # reads, but refuses the writes the cache, queues and rate limits make.
        client.set(HEALTH_PROBE_KEY, 1, ex=60)
    except REDIS_ERRORS as exc:
        log.warning("health: redis down: %s", exc.__class__.__name__)
        return {"status": DOWN, "error": f"redis unreachable ({exc.__class__.__name__})"}
    return {"status": OK, "latency_ms": _ms(started)}


def check_cache() -> dict:
    """/health/cache: Redis when configured; the in-process cache is always up."""
    result = check_redis()
    if result["status"] == DISABLED:
        return {"status": OK, "latency_ms": 0.0, "backend": "in-process", "detail": EMBEDDED}
    return result


def queue_depths() -> dict[str, int]:
    """Jobs waiting per queue (raises a Redis error when Redis is down)."""
    return {name: get_queue(name).count for name in QUEUE_NAMES}


def check_queues() -> dict:
    try:
        return {"status": OK, "depth": queue_depths()}
    except REDIS_ERRORS as exc:
        return {"status": DOWN, "error": f"redis unreachable ({exc.__class__.__name__})"}


def check_workers() -> dict:
    """Live workers: those that beat within their TTL (project/ops/heartbeats.py)."""
    client = redis_client.client
    if client is None:
        return {"status": DISABLED, "detail": EMBEDDED}
    try:
        count = len(live_workers(client))
    except REDIS_ERRORS as exc:
        return {"status": DOWN, "error": f"redis unreachable ({exc.__class__.__name__})"}
    return {"status": OK if count else DOWN, "count": count}


def check_scheduler() -> dict:
    client = redis_client.client
    if client is None:
        return {"status": DISABLED, "detail": EMBEDDED}
    try:
        alive = client.exists(SCHEDULER_ALIVE_KEY) > 0
        scheduled = client.zcard(SCHEDULED_JOBS_KEY)
    except REDIS_ERRORS as exc:
        return {"status": DOWN, "error": f"redis unreachable ({exc.__class__.__name__})"}
    return {"status": OK if alive else DOWN, "alive": bool(alive), "scheduled_jobs": scheduled}


def full_report() -> tuple[dict, bool]:
    """Every component, and whether the service is healthy (database and Redis not down)."""
    components = {"database": check_database(), "redis": check_redis()}
    if components["redis"]["status"] == DISABLED:
        for name in ("queue", "workers", "scheduler"):
            components[name] = {"status": DISABLED, "detail": EMBEDDED}
    elif components["redis"]["status"] == DOWN:
        for name in ("queue", "workers", "scheduler"):
            components[name] = {"status": DOWN, "error": "redis unreachable"}
    else:
        components["queue"] = check_queues()
        components["workers"] = check_workers()
        components["scheduler"] = check_scheduler()
    healthy = all(components[name]["status"] != DOWN for name in ("database", "redis"))
    # "degraded": serving, but a background part (queue, workers, scheduler) is missing.
    if not healthy:
        status = DOWN
    elif any(c["status"] == DOWN for c in components.values()):
        status = "degraded"
    else:
        status = OK
    return {"status": status, "components": components}, healthy


def refresh_queue_metrics() -> None:
    """Read queue depths at scrape time into the gauge; silent without Redis."""
    from project.metrics import record_queue_depths

    if redis_client.client is None:
        return
    try:
        record_queue_depths(queue_depths())
    except REDIS_ERRORS as exc:
        log.warning("metrics: queue depth unavailable: %s", exc.__class__.__name__)

"""Named RQ queues and `enqueue()`; jobs run inline when there is no Redis.

A job is a plain module-level function (a service call made by a worker); the worker runs it
inside an app context (`worker.py`). With no `REDIS_URL` (the embedded setup) `enqueue()`
calls it at once in this process, so the app works end to end without Redis.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app
from rq import Queue, Retry

from project.extensions import redis_client
from project.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)

QUEUE_NAMES = ("email", "stock", "sync", "cleanup")


@dataclass(frozen=True)
class EnqueuedJob:
    id: str
    inline: bool  # ran in this process already (no Redis): its effects are committed


def get_queue(name: str) -> Queue:
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    if not redis_client.enabled:
        raise RuntimeError("no Redis configured")
    return Queue(name, connection=redis_client.client)


def enqueue(
    queue: str,
    func: Callable,
    *args,
    job_id: str | None = None,
    retries: int = 3,
    backoff: tuple[int, ...] = (10, 30, 60),
    timeout: int = 300,
    result_ttl: int | None = None,
    **kwargs,
) -> EnqueuedJob | None:
    """Put `func(*args, **kwargs)` on `queue` with retries and a timeout.

    Returns None when Redis is unreachable: the caller has already committed what the job
    needs, and a periodic job picks it up later (or the caller reports the failure).
    Inline mode (no Redis): runs now; an exception is logged, not raised, as a worker would.
    `result_ttl` (default RQ_RESULT_TTL): how long RQ keeps a finished job; 0 deletes it at once.
    """
    job_id = job_id or str(uuid.uuid4())
    if not redis_client.enabled:
        try:
            func(*args, **kwargs)
        except Exception:
            log.exception("inline job %s (%s) failed", job_id, func.__name__)
        return EnqueuedJob(job_id, inline=True)
    try:
        get_queue(queue).enqueue(
            func,
            *args,
            job_id=job_id,
            retry=Retry(max=retries, interval=list(backoff)) if retries else None,
            job_timeout=timeout,
            result_ttl=current_app.config["RQ_RESULT_TTL"] if result_ttl is None else result_ttl,
            failure_ttl=7 * 24 * 3600,
            **kwargs,
        )
    except REDIS_ERRORS as exc:
        log.error("could not enqueue %s on %s: %s", func.__name__, queue, exc.__class__.__name__)
        return None
    return EnqueuedJob(job_id, inline=False)

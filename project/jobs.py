"""Named RQ queues and `enqueue()`; jobs run inline when there is no Redis.

A job is a plain module-level function (a service call made by a worker); the worker runs it
inside an app context (`worker.py`). With no `REDIS_URL` (the embedded setup) `enqueue()`
calls it in this process, so the app works end to end without Redis: at once, or with
`after_response=True` once the request's answer is made (on one background thread per
process, one job at a time, as a single worker would), so that answer says what a client
would see with a worker (an order's 202 says `pending`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from flask import after_this_request, current_app, has_request_context
from rq import Queue, Retry

from project import tracing
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
    after_response: bool = False,
    **kwargs,
) -> EnqueuedJob | None:
    """Put `func(*args, **kwargs)` on `queue` with retries and a timeout.

    Returns None when Redis is unreachable: the caller has already committed what the job
    needs, and a periodic job picks it up later (or the caller reports the failure).
    Inline mode (no Redis): runs now; an exception is logged, not raised, as a worker would.
    `result_ttl` (default RQ_RESULT_TTL): how long RQ keeps a finished job; 0 deletes it at once.
    `after_response`: inline, run it once the answer is made, not before (see the docstring).
    """
    job_id = job_id or str(uuid.uuid4())
    if not redis_client.enabled:
        if after_response and has_request_context():
            _run_after_response(job_id, func, args, kwargs)
            return EnqueuedJob(job_id, inline=False)
        _run_inline(job_id, func, args, kwargs)
        return EnqueuedJob(job_id, inline=True)
    try:
        with tracing.enqueue_span(func.__name__, queue) as meta:
            get_queue(queue).enqueue(
                func,
                *args,
                job_id=job_id,
                retry=Retry(max=retries, interval=list(backoff)) if retries else None,
                job_timeout=timeout,
                result_ttl=current_app.config["RQ_RESULT_TTL"] if result_ttl is None else result_ttl,
                failure_ttl=7 * 24 * 3600,
                **({"meta": meta} if meta else {}),
                **kwargs,
            )
    except REDIS_ERRORS as exc:
        log.error("could not enqueue %s on %s: %s", func.__name__, queue, exc.__class__.__name__)
        return None
    return EnqueuedJob(job_id, inline=False)


def _run_inline(job_id: str, func: Callable, args: tuple, kwargs: dict) -> None:
    try:
        func(*args, **kwargs)
    except Exception:
        log.exception("inline job %s (%s) failed", job_id, func.__name__)


_background: ThreadPoolExecutor | None = None


def _run_after_response(job_id: str, func: Callable, args: tuple, kwargs: dict) -> None:
    """Hand the job to this process's background thread once the request's answer is made."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with tracing.enqueue_span(func.__name__, "inline") as meta:
        pass  # the job's span continues this trace, as a worker's would

    def run() -> None:
        with app.app_context(), tracing.job_span(func.__name__, job_id, "inline", meta):
            _run_inline(job_id, func, args, kwargs)

    @after_this_request
    def start(response):
        global _background
        if _background is None:
            _background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inline-jobs")
        _background.submit(run)
        return response

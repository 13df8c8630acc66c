"""Named RQ queues and `enqueue()`; jobs run inline when there is no Redis.

A job is a plain module-level function (a service call made by a worker); the worker runs it
inside an app context (`worker.py`). With no `REDIS_URL` (the embedded setup) `enqueue()`
calls it in this process, so the app works end to end without Redis: at once, or with
`after_response=True` once the request's answer is made (on one background thread per
process, one job at a time, as a single worker would), so that answer says what a client
would see with a worker (an order's 202 says `pending`).

A feature's periodic jobs are `PeriodicJob`s in a module-level `PERIODIC` tuple of its
`jobs.py`, next to their functions; `project/schedule.py` collects them through FEATURES.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from flask import Flask, after_this_request, current_app, has_request_context
from rq import Queue, Retry
from rq.utils import import_attribute

from project import tracing
from project.extensions import redis_client
from project.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)

QUEUE_NAMES = ("email", "stock", "sync", "cleanup")
PERIODIC_ID_PREFIX = "periodic-"  # every periodic job's id; other scheduled jobs are not ours to touch

# A job: the function, or its dotted path when the caller is a module the job's own module
# imports (a service queueing a job that calls back into it), so the two never import each other.
# A constrained type variable, as RQ's own Queue.enqueue declares its function.
JobFunc = TypeVar("JobFunc", Callable, str)


@dataclass(frozen=True)
class PeriodicJob:
    """A job the scheduler runs every interval, under a stable id (Redis keeps its next run
    by that id, so an id never changes)."""

    id: str
    func: Callable  # a module-level function; the worker imports it by `path`
    queue: str
    interval_config: str | None = None  # config key holding the interval
    interval_unit_seconds: int = 60
    interval_seconds: int | None = None  # fixed interval, when not configurable

    def __post_init__(self) -> None:
        if not self.id.startswith(PERIODIC_ID_PREFIX):
            raise ValueError(f"periodic job ids start with {PERIODIC_ID_PREFIX!r}: {self.id!r}")
        if self.queue not in QUEUE_NAMES:
            raise ValueError(f"unknown queue {self.queue!r} for {self.id!r}")

    @property
    def path(self) -> str:
        """The dotted path rq-scheduler stores and the worker imports."""
        return f"{self.func.__module__}.{self.func.__qualname__}"

    def interval(self, app: Flask) -> int:
        if self.interval_seconds is not None:
            return self.interval_seconds
        return int(app.config[self.interval_config]) * self.interval_unit_seconds


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
    func: JobFunc,
    *args,
    job_id: str | None = None,
    retries: int = 3,
    backoff: tuple[int, ...] = (10, 30, 60),
    timeout: int = 300,
    result_ttl: int | None = None,
    after_response: bool = False,
    **kwargs,
) -> EnqueuedJob | None:
    """Put `func(*args, **kwargs)` on `queue` with retries and a timeout (`func`: the function
    or its dotted path, see JobFunc).

    Returns None when Redis is unreachable: the caller has already committed what the job
    needs, and a periodic job picks it up later (or the caller reports the failure).
    Inline mode (no Redis): runs now; an exception is logged, not raised, as a worker would.
    `result_ttl` (default RQ_RESULT_TTL): how long RQ keeps a finished job; 0 deletes it at once.
    `after_response`: inline, run it once the answer is made, not before (see the docstring).
    """
    job_id = job_id or str(uuid.uuid4())
    if not redis_client.enabled:
        function = import_attribute(func) if isinstance(func, str) else func
        if after_response and has_request_context():
            _run_after_response(job_id, function, args, kwargs)
            return EnqueuedJob(job_id, inline=False)
        _run_inline(job_id, function, args, kwargs)
        return EnqueuedJob(job_id, inline=True)
    name = job_name(func)
    try:
        with tracing.enqueue_span(name, queue) as meta:
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
        log.error("could not enqueue %s on %s: %s", name, queue, exc.__class__.__name__)
        return None
    return EnqueuedJob(job_id, inline=False)


def job_name(func: JobFunc) -> str:
    """The function's own name, as logs and traces show it, for a function or a dotted path."""
    return func.rpartition(".")[2] if isinstance(func, str) else func.__name__


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

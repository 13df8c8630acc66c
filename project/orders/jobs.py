"""Worker entry points of the orders feature (the "stock" queue).

`reserve_order` is enqueued by `POST /orders` under a deterministic job id; the scheduler
runs `expire_reservations` and `requeue_lost_orders` every minute (project/schedule.py).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from project import jobs
from project.database import utcnow
from project.extensions import redis_client
from project.orders import state_machine

log = logging.getLogger(__name__)

# Short: a job whose worker died counts as lost once RQ sees it past its timeout.
RESERVE_TIMEOUT_SECONDS = 30
RESERVE_BACKOFF = (5, 30, 120)
LIVE_STATUSES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}
# An order whose reservation was lost this many times is failed, not re-queued forever
# (a job that always crashes would otherwise come back every minute).
MAX_REQUEUES = 5
GAVE_UP_REASON = "The reservation could not be processed; please order again."


def reservation_job_id(order_id: int) -> str:
    return f"orders-reserve-{order_id}"


def enqueue_reservation(order_id: int) -> bool:
    """Queue the reservation of a committed order; False when Redis is down (recovered later)."""
    job = jobs.enqueue(
        "stock",
        reserve_order,
        order_id,
        job_id=reservation_job_id(order_id),
        retries=len(RESERVE_BACKOFF),
        backoff=RESERVE_BACKOFF,
        timeout=RESERVE_TIMEOUT_SECONDS,
    )
    return job is not None


def reserve_order(order_id: int) -> str | None:
    return state_machine.reserve(order_id)


def expire_reservations() -> int:
    return state_machine.expire_older_than(current_app.config["RESERVATION_TTL_MINUTES"])


def requeue_lost_orders() -> int:
    """Re-enqueue pending orders older than ORDERS_REQUEUE_AFTER_SECONDS with no live job.

    Lost means the enqueue failed (Redis was down at POST time), or the job ended without
    moving the order (worker killed, retries spent). Reservation is idempotent, so a
    duplicate run at worst changes nothing.
    """
    after = current_app.config["ORDERS_REQUEUE_AFTER_SECONDS"]
    ids = state_machine.stale_pending_ids(utcnow() - timedelta(seconds=after))
    live = _live_job_ids([reservation_job_id(order_id) for order_id in ids])
    requeued = []
    for order_id in ids:
        if reservation_job_id(order_id) in live:
            continue
        if _count_requeue(order_id) > MAX_REQUEUES:
            state_machine.fail(order_id, GAVE_UP_REASON)
            log.error("order %s: reservation lost %s times, order failed", order_id, MAX_REQUEUES)
        elif enqueue_reservation(order_id):
            requeued.append(order_id)
    if requeued:
        log.warning("re-enqueued %s lost order reservations: %s", len(requeued), requeued[:20])
    return len(requeued)


def _count_requeue(order_id: int) -> int:
    """How many times this order's reservation has been found lost (kept a day in Redis)."""
    client = redis_client.client
    if client is None:
        return 1  # inline mode: the reservation ran in the request; nothing to count
    key = f"orders:requeues:{order_id}"
    pipe = client.pipeline()
    pipe.incr(key)
    pipe.expire(key, 24 * 3600)
    return int(pipe.execute()[0])


def _live_job_ids(job_ids: list[str]) -> set[str]:
    """The ids among `job_ids` whose RQ job is queued, running or waiting for a retry."""
    connection = redis_client.client
    if not job_ids or connection is None:
        return set()
    # Moves jobs of dead workers (past their timeout) from "started" to failed.
    jobs.get_queue("stock").started_job_registry.cleanup()
    live = set()
    for job_id, job in zip(job_ids, Job.fetch_many(job_ids, connection=connection), strict=True):
        if job is None:
            continue
        if job.get_status(refresh=False) in LIVE_STATUSES:
            live.add(job_id)
        else:
            with contextlib.suppress(NoSuchJobError):
                job.delete()  # a finished/failed record would shadow the new job's registries
    return live

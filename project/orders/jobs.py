"""Worker entry points of the orders feature (the "stock" queue).

`reserve_order` is enqueued by `POST /orders` under a deterministic job id; the scheduler
runs `expire_reservations` every minute and `requeue_lost_orders` every
ORDERS_RECOVERY_INTERVAL_SECONDS (default 60; project/schedule.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import timedelta

from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from project import jobs
from project.database import utcnow
from project.extensions import redis_client
from project.orders import state_machine

log = logging.getLogger(__name__)

RESERVE_BACKOFF = (5, 30, 120)
# An order whose reservation was lost this many times is failed, not re-queued forever
# (a job that always kills its worker would otherwise come back every minute).
MAX_REQUEUES = 5
GAVE_UP_REASON = "The reservation could not be processed; please order again."
# A retry or a queued job this late (seconds) past its time is stuck: no scheduler moved it.
OVERDUE_SECONDS = 60


def reservation_job_id(order_id: int) -> str:
    return f"orders-reserve-{order_id}"


def enqueue_reservation(order_id: int) -> jobs.EnqueuedJob | None:
    """Queue the reservation of a committed order; None when Redis is down (recovered later).

    The job is deleted once it succeeds (nothing reads its result; the order row is the
    record), which also spares Redis a result entry per order.
    """
    return jobs.enqueue(
        "stock",
        reserve_order,
        order_id,
        job_id=reservation_job_id(order_id),
        retries=len(RESERVE_BACKOFF),
        backoff=RESERVE_BACKOFF,
        timeout=current_app.config["ORDERS_RESERVE_TIMEOUT_SECONDS"],
        result_ttl=0,
    )


def reserve_order(order_id: int) -> str | None:
    return state_machine.reserve(order_id)


def expire_reservations() -> int:
    return state_machine.expire_older_than(current_app.config["RESERVATION_TTL_MINUTES"])


def requeue_lost_orders() -> int:
    """Settle pending orders older than ORDERS_REQUEUE_AFTER_SECONDS whose reservation is lost.

    Run by the scheduler (every ORDERS_RECOVERY_INTERVAL_SECONDS). For each such order, its
    RQ job (`_job_fate`) is either still on its way (queued, running, waiting for a retry:
    left alone), failed for good (its last retry failed: the order is failed with a reason),
    or lost: never queued (Redis was down), its worker killed and its retries spent elsewhere,
    stuck past its time, or gone from Redis. A lost reservation is queued again, at most
    MAX_REQUEUES times; after that the order is failed. Reservation is idempotent, so a
    duplicate run at worst changes nothing. Returns how many were queued again.
    """
    after = current_app.config["ORDERS_REQUEUE_AFTER_SECONDS"]
    ids = state_machine.stale_pending_ids(utcnow() - timedelta(seconds=after))
    fates = _job_fates(ids)
    requeued = []
    for order_id in ids:
        fate = fates.get(order_id, LOST)
        if fate == ON_ITS_WAY:
            continue
        if fate == FAILED:
            state_machine.fail(order_id, GAVE_UP_REASON)
            log.error("order %s: reservation failed on its last try, order failed", order_id)
        elif _count_requeue(order_id) > MAX_REQUEUES:
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


ON_ITS_WAY, FAILED, LOST = "on its way", "failed", "lost"


def _job_fates(order_ids: list[int]) -> dict[int, str]:
    """What became of each order's reservation job (see requeue_lost_orders)."""
    connection = redis_client.client
    if not order_ids or connection is None:
        return {}
    queue = jobs.get_queue("stock")
    # RQ's own sweep of the running jobs: one whose worker died (past its timeout) is
    # retried (parked for its backoff) or, with no retry left, failed.
    queue.started_job_registry.cleanup()
    job_ids = [reservation_job_id(order_id) for order_id in order_ids]
    found = Job.fetch_many(job_ids, connection=connection)
    queued: set[str] | None = None
    now = time.time()
    fates: dict[int, str] = {}
    for order_id, job in zip(order_ids, found, strict=True):
        if job is None:  # gone from Redis
            fates[order_id] = LOST
            continue
        status = job.get_status(refresh=False)
        fate = LOST
        if status == JobStatus.FAILED:
            fate = FAILED
        elif status == JobStatus.STARTED:
            started = job.started_at.timestamp() if job.started_at else now
            if started + (job.timeout or 0) + OVERDUE_SECONDS > now:
                fate = ON_ITS_WAY
        elif status == JobStatus.SCHEDULED:
            due = connection.zscore(queue.scheduled_job_registry.key, job.id)
            if due is not None and due + OVERDUE_SECONDS > now:
                fate = ON_ITS_WAY
        elif status == JobStatus.QUEUED:
            if queued is None:  # read once, only when needed
                queued = set(queue.get_job_ids()) | set(queue.intermediate_queue.get_job_ids())
            if job.id in queued:
                fate = ON_ITS_WAY
        if fate == LOST:
            with contextlib.suppress(NoSuchJobError):
                job.delete()  # its record would shadow the new job's registries
        fates[order_id] = fate
    return fates

"""Worker entry points of the orders feature (the "stock" queue).

Reservations are coalesced into drain jobs: `POST /orders` commits the order, then calls
`request_drain()`, which queues a `drain_orders` job only if none is queued and not yet
started (the `orders:drain:queued` flag, one Redis round trip for most POSTs). A drain
reserves pending orders, oldest first, up to RESERVE_BATCH of them in one transaction, until
none is left. The scheduler runs `expire_reservations` every minute and the safety net `requeue_lost_orders`
every ORDERS_RECOVERY_INTERVAL_SECONDS (default 60): `PERIODIC`, below.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from datetime import timedelta
from enum import Enum
from typing import cast

from flask import current_app
from sqlalchemy.exc import DBAPIError

from project import jobs
from project.database import utcnow
from project.extensions import db, redis_client
from project.orders import state_machine
from project.products.service import invalidate_cache as invalidate_product_cache
from project.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)

RESERVE_BACKOFF = (5, 30, 120)
# An order whose reservation raised this many times (the first try and every retry) is failed.
RESERVE_TRIES = len(RESERVE_BACKOFF) + 1
# An order that the safety net finds at the head of a stalled queue this many times (a job
# that always kills its worker) is failed, not re-queued forever.
MAX_REQUEUES = 5
GAVE_UP_REASON = "The reservation could not be processed; please order again."
# A retry this late (seconds) past its time is stuck: no scheduler moved it.
OVERDUE_SECONDS = 60
# Set while a drain job is queued and not yet started; removed by the drain before it reads.
DRAIN_FLAG = "orders:drain:queued"
DRAIN_JOB_PREFIX = "orders-drain-"
# Orders reserved in one transaction at most (state_machine.reserve_batch).
RESERVE_BATCH = 100


class Drain(Enum):
    """What `request_drain` did."""

    QUEUED = "queued"  # a new drain job
    WAITING = "waiting"  # a queued drain has not started yet: it will see the order
    INLINE = "inline"  # no Redis: drained in this process now
    DOWN = "down"  # Redis unreachable: the safety net will


def request_drain() -> Drain:
    """Make sure a drain runs after the caller's commit.

    Why no order is missed: a drain deletes the flag before its first read, so an order
    committed before the deletion is seen by that drain, and one committed after it finds
    the flag absent and queues a new drain.
    """
    client = redis_client.client
    if client is not None:
        try:
            ttl = current_app.config["ORDERS_RESERVE_TIMEOUT_SECONDS"]
            if not client.set(DRAIN_FLAG, 1, nx=True, ex=ttl):
                return Drain.WAITING
        except REDIS_ERRORS as exc:
            log.error("could not flag a drain: %s", exc.__class__.__name__)
            return Drain.DOWN
    job = _enqueue_drain()
    if job is None:
        if client is not None:
            with contextlib.suppress(*REDIS_ERRORS):  # else it expires; the safety net covers it
                client.delete(DRAIN_FLAG)  # let the next POST try again
        return Drain.DOWN
    return Drain.INLINE if job.inline else Drain.QUEUED


def _enqueue_drain() -> jobs.EnqueuedJob | None:
    """A drain job (deleted once it succeeds: the order rows are the record)."""
    return jobs.enqueue(
        "stock",
        drain_orders,
        job_id=f"{DRAIN_JOB_PREFIX}{uuid.uuid4().hex}",
        retries=len(RESERVE_BACKOFF),
        backoff=RESERVE_BACKOFF,
        timeout=current_app.config["ORDERS_RESERVE_TIMEOUT_SECONDS"],
        result_ttl=0,
        after_response=True,  # inline (no Redis): the 202 still says pending, as with a worker
    )


def drain_orders() -> int:
    """Reserve pending orders, oldest first, RESERVE_BATCH to a transaction, until none is left.

    Concurrent drains take disjoint batches (FOR UPDATE SKIP LOCKED); a drain whose batch came
    back full queues another drain, so a backlog keeps every worker busy. Stops after half the
    job timeout and asks for a follow-up drain, so a busy stream never times a drain out.
    A batch that loses its database connection fails the job (RQ retries it after
    RESERVE_BACKOFF); one that raises otherwise is rolled back and the drain goes on order by
    order, where an order whose reservation raises fails the job, and on its RESERVE_TRIES-th
    error is failed with GAVE_UP_REASON. Returns how many orders it settled.
    """
    client = redis_client.client  # None inline (no Redis): one drain, in the request
    if client is not None:
        client.delete(DRAIN_FLAG)
    stop_at = time.monotonic() + current_app.config["ORDERS_RESERVE_TIMEOUT_SECONDS"] / 2
    settled = 0
    reserve = _reserve_batch
    while True:
        if client is not None and time.monotonic() > stop_at:
            request_drain()
            break
        try:
            count = reserve()
        except _BatchFailed:
            reserve = _reserve_oldest
            continue
        if not count:
            break
        if count == RESERVE_BATCH and client is not None:  # a backlog: call in another worker
            request_drain()
        settled += count
        invalidate_product_cache()  # after every commit: no stale page, one INCR per batch
    return settled


class _BatchFailed(Exception):
    """A batch could not be settled: the drain goes on order by order."""


def _reserve_batch() -> int:
    """`state_machine.reserve_batch` of RESERVE_BATCH orders; raises _BatchFailed (see
    `drain_orders`)."""
    try:
        return state_machine.reserve_batch(RESERVE_BATCH)
    except state_machine.RowsChanged:
        log.info("orders changed under a batch of reservations; going on order by order")
    except DBAPIError as exc:
        db.session.rollback()
        if exc.connection_invalidated:
            raise
        log.warning("a batch of reservations failed (%s); going on order by order", exc.__class__.__name__)
    except Exception:
        db.session.rollback()
        log.exception("a batch of reservations failed; going on order by order")
    raise _BatchFailed


def _reserve_oldest() -> int:
    """Reserve (or fail) the oldest pending order alone, as a batch of one; 1, or 0 when none
    is left. An order whose reservation raised RESERVE_TRIES times is failed."""
    order_ids = state_machine.lock_pending(1)
    if not order_ids:
        return 0
    try:
        state_machine.settle(order_ids)
    except state_machine.RowsChanged:
        pass  # changed meanwhile (SQLite has no row locks): the next round reads it afresh
    except Exception:
        db.session.rollback()
        if _count_in_redis(f"orders:errors:{order_ids[0]}") < RESERVE_TRIES:
            raise
        log.exception("order %s: reservation failed on its last try", order_ids[0])
        state_machine.fail(order_ids[0], GAVE_UP_REASON)
    return 1


def expire_reservations() -> int:
    return state_machine.expire_older_than(current_app.config["RESERVATION_TTL_MINUTES"])


def requeue_lost_orders() -> int:
    """The safety net: pending orders older than ORDERS_REQUEUE_AFTER_SECONDS and no drain on
    its way (queued, running, or a retry due) means their drain was lost (Redis was down at
    the POST, a worker was killed and its retries spent, a drain failed for good): queue a
    drain. The oldest such order is the one every drain starts with; found stalled more than
    MAX_REQUEUES times (a job that always kills its worker) it is failed instead. Returns how
    many stale orders the new drain covers.
    """
    after = current_app.config["ORDERS_REQUEUE_AFTER_SECONDS"]
    ids = state_machine.stale_pending_ids(utcnow() - timedelta(seconds=after))
    if not ids or _drain_on_its_way():
        return 0
    if _count_in_redis(f"orders:requeues:{ids[0]}") > MAX_REQUEUES:
        state_machine.fail(ids[0], GAVE_UP_REASON)
        log.error("order %s: its drain was lost %s times, order failed", ids[0], MAX_REQUEUES)
        ids = ids[1:]
    if not ids or _enqueue_drain() is None:
        return 0
    log.warning("queued a drain for %s stale pending orders: %s", len(ids), ids[:20])
    return len(ids)


def _count_in_redis(key: str) -> int:
    """Add one to the counter `key` in Redis (kept a day) and return it; 1 in inline mode
    (no Redis)."""
    client = redis_client.client
    if client is None:
        return 1
    pipe = client.pipeline()
    pipe.incr(key)
    pipe.expire(key, 24 * 3600)
    return int(pipe.execute()[0])


def _drain_on_its_way() -> bool:
    """A drain job is queued, running (within its heartbeat deadline), or waiting for a retry
    that is not overdue. RQ's own sweep runs first: a dead worker's drain is retried or failed."""
    if not redis_client.enabled:
        return False
    queue = jobs.get_queue("stock")
    queue.started_job_registry.cleanup()
    live = [
        *queue.get_job_ids(),
        *queue.intermediate_queue.get_job_ids(),
        *queue.started_job_registry.get_job_ids(),
    ]
    if any(job_id.startswith(DRAIN_JOB_PREFIX) for job_id in live):
        return True
    overdue = time.time() - OVERDUE_SECONDS
    scheduled = cast(
        list[bytes], queue.connection.zrangebyscore(queue.scheduled_job_registry.key, overdue, "+inf")
    )
    return any(job_id.startswith(DRAIN_JOB_PREFIX.encode()) for job_id in scheduled)


PERIODIC = (
    jobs.PeriodicJob(
        id="periodic-expire-reservations",
        func=expire_reservations,
        queue="stock",
        interval_seconds=60,
    ),
    jobs.PeriodicJob(
        id="periodic-requeue-lost-orders",
        func=requeue_lost_orders,
        queue="stock",
        interval_config="ORDERS_RECOVERY_INTERVAL_SECONDS",
        interval_unit_seconds=1,
    ),
)

"""The periodic jobs, as data, and the scheduler process (`python worker.py --scheduler`)
that runs them and every retry a job asks for.

Each job has a stable id, so registering again (a scheduler restart, a second scheduler)
replaces the earlier registration instead of adding a duplicate; a job whose id carries our
prefix but is no longer listed here is removed from the scheduler at registration.

Retries: a job enqueued with `Retry(interval=...)` that fails is parked in RQ's own
`ScheduledJobRegistry` of its queue, which rq-scheduler does not read. The scheduler process
therefore also runs RQ's scheduler (`rq.scheduler.RQScheduler`) on every pass, in-process and
under RQ's per-queue locks, so each retry is queued at its time (at most one pass late).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask
from rq.scheduler import RQScheduler
from rq_scheduler import Scheduler

from project.jobs import QUEUE_NAMES

log = logging.getLogger(__name__)

ID_PREFIX = "periodic-"  # every periodic job's id; other scheduled jobs are not ours to touch


@dataclass(frozen=True)
class PeriodicJob:
    id: str
    func: str  # dotted path, imported by the worker
    queue: str
    interval_config: str | None = None  # config key holding the interval
    interval_unit_seconds: int = 60
    interval_seconds: int | None = None  # fixed interval, when not configurable

    def __post_init__(self) -> None:
        if not self.id.startswith(ID_PREFIX):
            raise ValueError(f"periodic job ids start with {ID_PREFIX!r}: {self.id!r}")

    def interval(self, app: Flask) -> int:
        if self.interval_seconds is not None:
            return self.interval_seconds
        return int(app.config[self.interval_config]) * self.interval_unit_seconds


PERIODIC_JOBS = (
    PeriodicJob(
        id="periodic-products-sync",
        func="project.products.jobs.sync_products_job",
        queue="sync",
        interval_config="PRODUCTS_SYNC_INTERVAL_MINUTES",
    ),
    PeriodicJob(
        id="periodic-cleanup-unverified-users",
        func="project.users.jobs.cleanup_unverified_users",
        queue="cleanup",
        interval_seconds=3600,
    ),
    PeriodicJob(
        id="periodic-prune-login-failures",
        func="project.auth.jobs.prune_login_failures",
        queue="cleanup",
        interval_seconds=3600,
    ),
    PeriodicJob(
        id="periodic-expire-reservations",
        func="project.orders.jobs.expire_reservations",
        queue="stock",
        interval_seconds=60,
    ),
    PeriodicJob(
        id="periodic-requeue-lost-orders",
        func="project.orders.jobs.requeue_lost_orders",
        queue="stock",
        interval_config="ORDERS_RECOVERY_INTERVAL_SECONDS",
        interval_unit_seconds=1,
    ),
)


SCHEDULER_ALIVE_KEY = "rq:scheduler:alive"


class AppScheduler(Scheduler):
    """rq-scheduler that keeps the periodic jobs registered, queues RQ's due retries, and says
    it is alive.

    - Before each pass it re-registers any periodic job missing from Redis: a Redis restart
      without persistence (or a flush) would otherwise leave it running with nothing to run.
    - Each pass also moves the retries that are due from RQ's scheduled registries to their
      queues (`self.retries`, RQ's own scheduler, run here instead of in a forked process).
    - It keeps one well-known key alive (`SCHEDULER_ALIVE_KEY`, expiring like rq-scheduler's
      own instance key), so health checks read one key instead of scanning the keyspace.
    """

    def __init__(self, *args, app: Flask, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.app = app
        self.retries = RQScheduler(QUEUE_NAMES, connection=self.connection, interval=int(self._interval))

    def enqueue_jobs(self):
        missing = [
            job for job in PERIODIC_JOBS if self.connection.zscore(self.scheduled_jobs_key, job.id) is None
        ]
        for job in missing:
            _schedule(self.app, self, job)
        self.enqueue_due_retries()
        return super().enqueue_jobs()

    def enqueue_due_retries(self) -> None:
        """RQScheduler.work()'s loop body, one pass: hold the queues' locks, queue what is due.

        The locks make a second scheduler process (or an `rq worker --with-scheduler`) wait
        instead of queueing the same retry twice; it takes over once they expire.
        """
        if self.retries.should_reacquire_locks:
            self.retries.acquire_locks()
        self.retries.heartbeat()
        self.retries.enqueue_scheduled_jobs()

    def _beat(self) -> None:
        self.connection.set(SCHEDULER_ALIVE_KEY, self.key, ex=int(self._interval) + 10)

    def register_birth(self) -> None:
        super().register_birth()
        self.retries.register_birth()
        self._beat()

    def heartbeat(self) -> None:
        super().heartbeat()
        self._beat()

    def register_death(self) -> None:
        super().register_death()
        self.retries.release_locks()
        self.retries.register_death()
        if self.connection.get(SCHEDULER_ALIVE_KEY) == self.key.encode():
            self.connection.delete(SCHEDULER_ALIVE_KEY)


def _schedule(app: Flask, scheduler: Scheduler, job: PeriodicJob) -> None:
    scheduler.schedule(
        scheduled_time=datetime.now(UTC),
        func=job.func,
        interval=job.interval(app),
        repeat=None,
        id=job.id,
        queue_name=job.queue,
        timeout=600,
        result_ttl=job.interval(app) * 2,
    )
    log.info("scheduled %s every %ss on %s", job.id, job.interval(app), job.queue)


def register_periodic_jobs(app: Flask, scheduler: Scheduler) -> list[str]:
    """(Re-)register every periodic job under its stable id; returns the ids.

    Periodic jobs no longer listed (removed or renamed in a release) are cancelled too, or
    they would keep firing forever.
    """
    wanted = {job.id for job in PERIODIC_JOBS}
    for existing in scheduler.get_jobs():
        if existing.id.startswith(ID_PREFIX):
            scheduler.cancel(existing)
            if existing.id not in wanted:
                log.info("removed %s: no longer a periodic job", existing.id)
    for job in PERIODIC_JOBS:
        _schedule(app, scheduler, job)
    return [job.id for job in PERIODIC_JOBS]

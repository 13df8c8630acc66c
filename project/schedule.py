"""The periodic jobs, as data: the scheduler process (`python worker.py --scheduler`) is
their one home.

Each job has a stable id, so registering again (a scheduler restart, a second scheduler)
replaces the earlier registration instead of adding a duplicate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask
from rq_scheduler import Scheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    id: str
    func: str  # dotted path, imported by the worker
    queue: str
    interval_config: str | None = None  # config key holding the interval
    interval_unit_seconds: int = 60
    interval_seconds: int | None = None  # fixed interval, when not configurable

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
        id="periodic-expire-reservations",
        func="project.orders.jobs.expire_reservations",
        queue="stock",
        interval_seconds=60,
    ),
    PeriodicJob(
        id="periodic-requeue-lost-orders",
        func="project.orders.jobs.requeue_lost_orders",
        queue="stock",
        interval_seconds=60,
    ),
)


SCHEDULER_ALIVE_KEY = "rq:scheduler:alive"


class AppScheduler(Scheduler):
    """rq-scheduler that also keeps one well-known key alive while it runs.

    rq-scheduler registers each instance under its own key; health checks would have to scan
    the keyspace (cache entries included) to find them. This key expires like the instance key
    (interval + 10 s after the last heartbeat) when every scheduler is gone.
    """

    def _beat(self) -> None:
        self.connection.set(SCHEDULER_ALIVE_KEY, self.key, ex=int(self._interval) + 10)

    def register_birth(self) -> None:
        super().register_birth()
        self._beat()

    def heartbeat(self) -> None:
        super().heartbeat()
        self._beat()

    def register_death(self) -> None:
        super().register_death()
        if self.connection.get(SCHEDULER_ALIVE_KEY) == self.key.encode():
            self.connection.delete(SCHEDULER_ALIVE_KEY)


def register_periodic_jobs(app: Flask, scheduler: Scheduler) -> list[str]:
    """(Re-)register every periodic job under its stable id; returns the ids."""
    wanted = {job.id for job in PERIODIC_JOBS}
    for existing in scheduler.get_jobs():
        if existing.id in wanted:
            scheduler.cancel(existing)
    now = datetime.now(UTC)
    for job in PERIODIC_JOBS:
        scheduler.schedule(
            scheduled_time=now,
            func=job.func,
            interval=job.interval(app),
            repeat=None,
            id=job.id,
            queue_name=job.queue,
            timeout=600,
            result_ttl=job.interval(app) * 2,
        )
        log.info("scheduled %s every %ss on %s", job.id, job.interval(app), job.queue)
    return [job.id for job in PERIODIC_JOBS]

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

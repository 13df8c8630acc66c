"""The scheduler process (`python worker.py --scheduler`): it runs every feature's periodic
jobs (declared as `PERIODIC` in the feature's jobs.py, collected by `periodic_jobs()`) and
every retry a job asks for.

Each job has a stable id, so registering again (a scheduler restart, a second scheduler)
never adds a duplicate, and it keeps the job's next run: a restart, a crash loop or a Redis
blip runs nothing early. A job whose definition changed (interval, function, queue) is
rewritten, keeping its next run unless the new interval comes sooner; a job whose id carries
our prefix but is no longer declared is removed. Only a job missing from Redis (the first
start, or a Redis that lost its data) is scheduled for now.

Retries: a job enqueued with `Retry(interval=...)` that fails is parked in RQ's own
`ScheduledJobRegistry` of its queue, which rq-scheduler does not read. The scheduler process
therefore also runs RQ's scheduler (`rq.scheduler.RQScheduler`) on every pass, in-process and
under RQ's per-queue locks, so each retry is queued at its time (at most one pass late).
Those locks last RETRY_LOCK_SECONDS and a scheduler without them tries to take them every
few seconds, so a surviving scheduler moves the retries within seconds of the active one's
death (RQ's own lease is 61 s, looked at again every 120 s).

Abandoned jobs: each pass, every ABANDONED_SWEEP_SECONDS, the started registries of every
queue are swept: a job whose worker stopped renewing its lease (worker.py) is retried (or
failed, once its retries are spent) by RQ's own clean-up.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import time
from datetime import UTC, datetime

from flask import Flask
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler
from rq.scripts import acquire_or_refresh_lock
from rq_scheduler import Scheduler

from project import FEATURES
from project.jobs import PERIODIC_ID_PREFIX, QUEUE_NAMES, PeriodicJob

log = logging.getLogger(__name__)


@functools.cache  # read on every scheduler pass; the declarations never change in a process
def periodic_jobs() -> tuple[PeriodicJob, ...]:
    """Every feature's periodic jobs: the `PERIODIC` tuple of each `project/<feature>/jobs.py`,
    in FEATURES order (found by name, as the app factory finds each feature's CLI commands)."""
    found: list[PeriodicJob] = []
    for feature in FEATURES:
        if importlib.util.find_spec(f"project.{feature}.jobs") is None:
            continue
        found += getattr(importlib.import_module(f"project.{feature}.jobs"), "PERIODIC", ())
    ids = [job.id for job in found]
    duplicates = sorted({job_id for job_id in ids if ids.count(job_id) > 1})
    if duplicates:
        raise ValueError(f"periodic job ids declared twice: {duplicates}")
    return tuple(found)


SCHEDULER_ALIVE_KEY = "rq:scheduler:alive"
# The retry scheduler's per-queue locks: how long one outlives its holder, and how often a
# scheduler that lacks some tries to take them.
RETRY_LOCK_SECONDS = 10
RETRY_LOCK_TRY_SECONDS = 2
ABANDONED_SWEEP_SECONDS = 5


class RetryScheduler(RQScheduler):
    """RQ's scheduler of retries with short locks (RQ's: 61 s, retaken after 120 s)."""

    @property
    def should_reacquire_locks(self) -> bool:
        if set(self._queue_names) == self.acquired_locks:
            return False
        if self.lock_acquisition_time is None:
            return True
        return (datetime.now() - self.lock_acquisition_time).total_seconds() >= RETRY_LOCK_TRY_SECONDS

    def acquire_locks(self, auto_start: bool = False) -> set[str]:
        owned = set()
        for name in self._queue_names:
            outcome = acquire_or_refresh_lock(
                self.connection, self.get_locking_key(name), self.name, RETRY_LOCK_SECONDS
            )
            if outcome == "acquired":
                log.info("took the retry lock of queue %s", name)
            if outcome != "taken":
                owned.add(name)
        self._scheduled_job_registries = []
        self._acquired_locks = owned
        self.lock_acquisition_time = datetime.now()  # type: ignore[assignment]  # RQ declares it None
        return owned

    def heartbeat(self) -> None:
        """Refresh the locks held; one lost to another scheduler is dropped."""
        lost = {
            name
            for name in sorted(self._acquired_locks)
            if acquire_or_refresh_lock(
                self.connection, self.get_locking_key(name), self.name, RETRY_LOCK_SECONDS
            )
            == "taken"
        }
        if lost:
            log.warning("retry locks of %s taken over by another scheduler", ", ".join(sorted(lost)))
            self._acquired_locks -= lost
            self._scheduled_job_registries = []


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
        self.retries = RetryScheduler(QUEUE_NAMES, connection=self.connection, interval=int(self._interval))
        self._swept_at = 0.0

    def enqueue_jobs(self):
        missing = [
            job for job in periodic_jobs() if self.connection.zscore(self.scheduled_jobs_key, job.id) is None
        ]
        for job in missing:
            _schedule(self.app, self, job)
        self.sweep_abandoned_jobs()
        self.enqueue_due_retries()
        return super().enqueue_jobs()

    def sweep_abandoned_jobs(self) -> None:
        """RQ's clean-up of each queue's started registry: a job whose lease ran out (its
        worker died) is retried, or failed once its retries are spent."""
        if time.monotonic() - self._swept_at < ABANDONED_SWEEP_SECONDS:
            return
        self._swept_at = time.monotonic()
        for name in QUEUE_NAMES:
            StartedJobRegistry(name, connection=self.connection).cleanup()

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


def _schedule(app: Flask, scheduler: Scheduler, job: PeriodicJob, at: datetime | None = None) -> None:
    scheduler.schedule(
        scheduled_time=at or datetime.now(UTC),
        func=job.path,
        interval=job.interval(app),
        repeat=None,
        id=job.id,
        queue_name=job.queue,
        timeout=600,
        result_ttl=job.interval(app) * 2,
    )
    log.info("scheduled %s every %ss on %s", job.id, job.interval(app), job.queue)


def register_periodic_jobs(app: Flask, scheduler: Scheduler) -> list[str]:
    """Register every periodic job under its stable id, keeping the next run of those already
    registered as they are; returns the ids.

    Periodic jobs no longer declared (removed or renamed in a release) are cancelled, or they
    would keep firing forever.
    """
    declared = periodic_jobs()
    wanted = {job.id: job for job in declared}
    registered = {
        existing.id: existing
        for existing in scheduler.get_jobs()
        if existing.id.startswith(PERIODIC_ID_PREFIX)
    }
    for job_id, existing in registered.items():
        if job_id not in wanted:
            scheduler.cancel(existing)
            log.info("removed %s: no longer a periodic job", job_id)
    for job in declared:
        existing = registered.get(job.id)
        if existing is None:
            _schedule(app, scheduler, job)  # never registered, or Redis lost it: now
            continue
        if _unchanged(app, existing, job):
            continue  # keeps its next run
        next_run = scheduler.connection.zscore(scheduler.scheduled_jobs_key, job.id)
        at = min(next_run or 0.0, time.time() + job.interval(app))
        _schedule(app, scheduler, job, at=datetime.fromtimestamp(at, UTC))
    return [job.id for job in declared]


def _unchanged(app: Flask, registered, job: PeriodicJob) -> bool:
    return (
        registered.func_name == job.path
        and registered.origin == job.queue
        and registered.meta.get("interval") == job.interval(app)
    )

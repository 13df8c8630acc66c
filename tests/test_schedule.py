"""The scheduler (project/schedule.py): registering again keeps every periodic job's next run,
the retry locks are short so a survivor takes over in seconds, and abandoned jobs are swept."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from rq import Retry
from rq_scheduler import Scheduler

from project import schedule
from project.extensions import redis_client
from project.jobs import get_queue
from project.schedule import PERIODIC_JOBS, AppScheduler, RetryScheduler, register_periodic_jobs


def next_runs(scheduler: Scheduler) -> dict[str, float]:
    return {job.id: when.timestamp() for job, when in scheduler.get_jobs(with_times=True)}


def test_registering_again_keeps_every_next_run(app):
    with app.app_context():
        scheduler = Scheduler(connection=redis_client.client)
        register_periodic_jobs(app, scheduler)
        later = time.time() + 1800
        for job in PERIODIC_JOBS:  # as if each had just run
            redis_client.client.zadd(scheduler.scheduled_jobs_key, {job.id: later})
        register_periodic_jobs(app, Scheduler(connection=redis_client.client))  # a restart
        runs = next_runs(scheduler)
    assert sorted(runs) == sorted(job.id for job in PERIODIC_JOBS)
    assert all(abs(when - later) < 1 for when in runs.values()), runs  # nothing moved to now


def test_a_changed_interval_keeps_the_next_run_unless_the_new_one_is_sooner(app):
    job = next(job for job in PERIODIC_JOBS if job.interval_seconds == 3600)
    with app.app_context():
        scheduler = Scheduler(connection=redis_client.client)
        register_periodic_jobs(app, scheduler)
        far = time.time() + 3000
        redis_client.client.zadd(scheduler.scheduled_jobs_key, {job.id: far})
        scheduler.schedule(  # an older release registered it every 2 hours
            scheduled_time=datetime.fromtimestamp(far, UTC),
            func=job.func,
            interval=7200,
            id=job.id,
            queue_name=job.queue,
        )
        register_periodic_jobs(app, scheduler)
        ((registered, when),) = [(j, w) for j, w in scheduler.get_jobs(with_times=True) if j.id == job.id]
    assert registered.meta["interval"] == 3600
    assert abs(when.timestamp() - far) < 1  # 3000 s away is sooner than the new hour: kept


@pytest.fixture
def short_locks(monkeypatch):
    monkeypatch.setattr(schedule, "RETRY_LOCK_SECONDS", 1)
    monkeypatch.setattr(schedule, "RETRY_LOCK_TRY_SECONDS", 0)


@pytest.mark.redis  # lock expiry needs a real Redis clock
def test_a_surviving_scheduler_takes_the_retry_locks_once_the_holder_stops_renewing(app, short_locks):
    with app.app_context():
        active = RetryScheduler(["stock"], connection=redis_client.client, interval=1)
        survivor = RetryScheduler(["stock"], connection=redis_client.client, interval=1)
        assert active.acquire_locks() == {"stock"}
        assert survivor.acquire_locks() == set()  # held: it waits
        time.sleep(1.5)  # the holder died: no renewal
        assert survivor.should_reacquire_locks
        assert survivor.acquire_locks() == {"stock"}
        active.heartbeat()
        assert active.acquired_locks == set()  # the old holder lets go


def failing_job() -> None:
    raise RuntimeError("never runs here")


@pytest.mark.redis
def test_the_sweep_retries_a_job_whose_lease_ran_out(app, monkeypatch):
    monkeypatch.setattr(schedule, "ABANDONED_SWEEP_SECONDS", 0)
    with app.app_context():
        queue = get_queue("stock")
        job = queue.enqueue(failing_job, retry=Retry(max=2, interval=5))
        queue.remove(job)  # taken by a worker that then died: a lease already over
        redis_client.client.zadd(
            queue.started_job_registry.key, {f"{job.id}:dead-execution": time.time() - 1}
        )
        scheduler = AppScheduler(connection=redis_client.client, interval=1, app=app)
        scheduler.sweep_abandoned_jobs()
        assert queue.started_job_registry.get_job_ids() == []
        assert job.id in queue.scheduled_job_registry.get_job_ids()  # its retry, in 5 s
        job.refresh()
        assert job.retries_left == 1

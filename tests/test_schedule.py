"""The scheduler (project/schedule.py): every feature's periodic jobs are collected, registering
again keeps each one's next run, the retry locks are short so a survivor takes over in seconds,
and abandoned jobs are swept."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rq import Retry
from rq.utils import import_attribute
from rq_scheduler import Scheduler

from project import FEATURES, schedule
from project.extensions import redis_client
from project.jobs import PeriodicJob, get_queue
from project.schedule import AppScheduler, RetryScheduler, periodic_jobs, register_periodic_jobs

# Redis keeps each job's next run under its id, and operators set these keys: neither changes.
KNOWN_JOBS = {
    "periodic-prune-login-failures": None,
    "periodic-cleanup-unverified-users": None,
    "periodic-products-sync": "PRODUCTS_SYNC_INTERVAL_MINUTES",
    "periodic-expire-reservations": None,
    "periodic-requeue-lost-orders": "ORDERS_RECOVERY_INTERVAL_SECONDS",
}


def declared_by_features() -> list[PeriodicJob]:
    found: list[PeriodicJob] = []
    for feature in FEATURES:
        if importlib.util.find_spec(f"project.{feature}.jobs") is not None:
            found += getattr(importlib.import_module(f"project.{feature}.jobs"), "PERIODIC", ())
    return found


def test_every_feature_s_periodic_jobs_are_collected_under_unique_ids():
    declared = declared_by_features()
    collected = periodic_jobs()
    assert list(collected) == declared
    assert len({job.id for job in collected}) == len(collected)
    assert {job.id: job.interval_config for job in collected} == KNOWN_JOBS


def test_each_periodic_job_is_declared_beside_its_function_and_imports_by_its_path():
    for job in periodic_jobs():
        assert import_attribute(job.path) is job.func
        assert job.path.startswith("project.") and job.path.rpartition(".")[0].endswith(".jobs")


def test_a_periodic_job_id_declared_twice_is_refused(monkeypatch):
    import project.users.jobs as users_jobs

    monkeypatch.setattr(users_jobs, "PERIODIC", users_jobs.PERIODIC * 2)
    periodic_jobs.cache_clear()
    try:
        with pytest.raises(ValueError, match="declared twice"):
            periodic_jobs()
    finally:
        monkeypatch.undo()
        periodic_jobs.cache_clear()


def test_periodic_jobs_name_a_known_queue_and_the_prefix():
    job = periodic_jobs()[0]
    with pytest.raises(ValueError, match="start with"):
        PeriodicJob(id="nightly", func=job.func, queue=job.queue, interval_seconds=60)
    with pytest.raises(ValueError, match="unknown queue"):
        PeriodicJob(id="periodic-x", func=job.func, queue="nowhere", interval_seconds=60)


def next_runs(scheduler: Scheduler) -> dict[str, float]:
    return {job.id: when.timestamp() for job, when in scheduler.get_jobs(with_times=True)}


def test_registering_again_keeps_every_next_run(app):
    with app.app_context():
        scheduler = Scheduler(connection=redis_client.client)
        register_periodic_jobs(app, scheduler)
        later = time.time() + 1800
        for job in periodic_jobs():  # as if each had just run
            redis_client.client.zadd(scheduler.scheduled_jobs_key, {job.id: later})
        register_periodic_jobs(app, Scheduler(connection=redis_client.client))  # a restart
        runs = next_runs(scheduler)
    assert sorted(runs) == sorted(job.id for job in periodic_jobs())
    assert all(abs(when - later) < 1 for when in runs.values()), runs  # nothing moved to now


def test_a_changed_interval_keeps_the_next_run_unless_the_new_one_is_sooner(app):
    job = next(job for job in periodic_jobs() if job.interval_seconds == 3600)
    with app.app_context():
        scheduler = Scheduler(connection=redis_client.client)
        register_periodic_jobs(app, scheduler)
        far = time.time() + 3000
        redis_client.client.zadd(scheduler.scheduled_jobs_key, {job.id: far})
        scheduler.schedule(  # an older release registered it every 2 hours
            scheduled_time=datetime.fromtimestamp(far, UTC),
            func=job.path,
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


def project_imports() -> dict[str, set[str]]:
    """Each module of project/ and the project modules it imports (at module level or inside
    a function); `from package import name` counts as importing the submodule when it is one."""
    root = Path(__file__).resolve().parent.parent / "project"
    modules = {
        ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): path
        for path in root.rglob("*.py")
        if "generated" not in path.parts
    }
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                targets |= {
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                }
        graph[module] = {target for target in targets if target in modules and target != module}
    return graph


def test_no_feature_module_imports_the_jobs_that_call_it():
    """A feature's jobs.py calls its service; were the service (or anything the jobs import) to
    import the jobs back, the two would form an import circle: it queues them by dotted path."""
    graph = project_imports()
    circles = []
    for jobs_module in (module for module in graph if module.endswith(".jobs")):
        seen, todo = set(), list(graph[jobs_module])
        while todo:
            module = todo.pop()
            if module in seen:
                continue
            seen.add(module)
            todo += graph[module]
        if jobs_module in seen:
            circles.append(jobs_module)
    assert circles == []


def test_the_jobs_queued_by_dotted_path_exist():
    from project.auth import jobs as auth_jobs
    from project.auth.service import PASSWORD_RESET_JOB
    from project.products import jobs as product_jobs
    from project.products.sync import SYNC_JOB

    assert import_attribute(PASSWORD_RESET_JOB) is auth_jobs.send_password_reset_job
    assert import_attribute(SYNC_JOB) is product_jobs.sync_products_job

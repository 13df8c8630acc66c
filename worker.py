"""Background processes.

`python worker.py`              RQ worker for every queue (email, stock, sync, cleanup)
`python worker.py --scheduler`  registers the periodic jobs with rq-scheduler and runs it
`python worker.py --check`      exit 0 when a worker of this host beat within its TTL, else 1
                                (the container healthcheck: it asks about its own worker)

Both need `REDIS_URL`. Each job runs inside a fresh app context, so it has the database
session and config of the app, and leaves no session state behind for the next job. A worker
counts its job runs, failures and durations by job function, and serves them (with its process
metrics) on `METRICS_PORT` when set.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import sys
import threading
import time

from flask import Flask
from rq import SimpleWorker, worker_registration
from rq.exceptions import StopRequested

from config import refusing_bad_config, start_line
from project import create_app, tracing
from project.extensions import redis_client
from project.jobs import QUEUE_NAMES, get_queue
from project.metrics import record_job, serve_process_metrics
from project.ops import heartbeats
from project.redis_client import REDIS_ERRORS
from project.schedule import AppScheduler, register_periodic_jobs

log = logging.getLogger("worker")


# Waits between tries to reach Redis again after losing it: doubling from the first, capped.
RECONNECT_BACKOFF_SECONDS = (1.0, 5.0)


class AppWorker(SimpleWorker):
    """Runs jobs in this process (no fork per job: no pooled DB connection shared across a
    fork, and no fork cost per job), each inside its own app context.

    While a job runs, a thread renews its lease (its entry in the queue's started registry)
    every few seconds, for JOB_LEASE_SECONDS: a job whose worker was killed counts as abandoned
    that long after the last renewal, and the scheduler's sweep retries it (project/schedule.py).
    """

    flask_app: Flask | None = None  # set by run_worker before the worker starts
    _heartbeat: heartbeats.Heartbeat | None = None
    # RQ's idle loop waits up to a minute between tries to reach a lost Redis; a few seconds
    # here, so work resumes soon after Redis does.
    max_connection_wait_time = RECONNECT_BACKOFF_SECONDS[1]

    def perform_job(self, job, queue):
        started = time.perf_counter()
        assert self.flask_app is not None, "run_worker() sets the app"
        lease = JobLease(self, job).start()
        try:
            # The job's span continues the trace that queued it (project.tracing; nothing when off).
            with self.flask_app.app_context(), tracing.job_span(job.func_name, job.id, queue.name, job.meta):
                succeeded = super().perform_job(job, queue)
        finally:
            lease.stop()
        record_job(job.func_name, queue.name, succeeded, time.perf_counter() - started)
        return succeeded

    # Liveness (project/ops/heartbeats.py): RQ refreshes its own worker key only between jobs
    # and registers the worker in `rq:workers` only at birth; a thread beats all along.
    def register_birth(self) -> None:
        super().register_birth()
        assert self.flask_app is not None, "run_worker() sets the app"
        ttl = int(self.flask_app.config["WORKER_HEARTBEAT_TTL_SECONDS"])
        heartbeats.beat(self.connection, self.name, ttl)
        self._heartbeat = heartbeats.Heartbeat(lambda: self.beat(ttl), ttl).start()

    def beat(self, ttl: int) -> None:
        if heartbeats.beat(self.connection, self.name, ttl):
            # Redis lost us (restarted empty): register again, so RQ's dashboard sees us too.
            with self.connection.pipeline() as pipe:
                pipe.hset(self.key, mapping=self.serialize())
                pipe.expire(self.key, self.worker_ttl + 60)
                worker_registration.register(self, pipe)
                pipe.execute()

    def register_death(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
            with contextlib.suppress(*REDIS_ERRORS):  # else the key expires within its TTL
                heartbeats.forget(self.connection, self.name)
        super().register_death()

    def get_heartbeat_ttl(self, job) -> int:
        """How long the job stays in the started registry without a renewal: its lease. RQ's
        default (the job's timeout + 60 s) left a killed worker's job waiting minutes."""
        assert self.flask_app is not None, "run_worker() sets the app"
        return int(self.flask_app.config["JOB_LEASE_SECONDS"])


class JobLease:
    """Renews a running job's lease from a thread, three times per lease."""

    def __init__(self, worker: AppWorker, job) -> None:
        self.worker, self.job = worker, job
        self.execution = worker.execution  # set by prepare_execution(), before perform_job()
        self.ttl = worker.get_heartbeat_ttl(job)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-lease", daemon=True)

    def start(self) -> JobLease:
        if self.execution is not None:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        assert self.execution is not None, "started only with an execution"
        while not self._stopped.wait(self.ttl / 3):
            try:
                with self.worker.connection.pipeline() as pipe:
                    self.worker.heartbeat(self.ttl + 60, pipeline=pipe)
                    self.execution.heartbeat(self.job.started_job_registry, self.ttl, pipeline=pipe)
                    pipe.execute()
            except REDIS_ERRORS as exc:  # the job goes on; Redis may answer before the lease ends
                log.warning("job %s: lease not renewed (%s)", self.job.id, exc.__class__.__name__)


def run_worker(app, queue_names: list[str], burst: bool = False) -> bool:
    """Work until asked to stop, outliving Redis: a worker that lost Redis (idle, or mid-job:
    RQ then quits its loop, and its own clean-up raises too) is replaced by a new one, with a
    new name, once Redis answers again. The job it was running is retried when its lease runs
    out (or, if Redis lost its data, its orders are found by the safety net)."""
    AppWorker.flask_app = app
    wait = RECONNECT_BACKOFF_SECONDS[0]
    while True:
        worker: AppWorker | None = None
        try:
            with app.app_context():  # building one talks to Redis too (CLIENT SETNAME)
                queues = [get_queue(name) for name in queue_names]
                worker = AppWorker(queues, connection=redis_client.client, name=heartbeats.worker_name())
            worked = worker.work(burst=burst, logging_level=app.config["LOG_LEVEL"])
            if burst or worker._stop_requested or worker._shutdown_requested_date:
                return worked
            log.error("worker %s stopped working (Redis lost?); a new one starts", worker.name)
        except StopRequested:
            return False
        except REDIS_ERRORS as exc:
            log.error("worker lost Redis (%s); reconnecting", exc.__class__.__name__)
        try:
            wait = _wait_for_redis(app.extensions["redis"], worker.name if worker else None, wait)
        except StopRequested:  # SIGTERM while waiting: RQ's handler is still installed
            return False


def _wait_for_redis(client, lost_name: str | None, wait: float) -> float:
    """Sleep with a doubling backoff until Redis answers; forget the lost worker's heartbeat,
    so /health/full counts only the new one. Returns the next wait to use."""
    first, cap = RECONNECT_BACKOFF_SECONDS
    while True:
        time.sleep(wait)
        wait = min(wait * 2, cap)
        try:
            client.ping()
        except REDIS_ERRORS:
            continue
        if lost_name is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                heartbeats.forget(client, lost_name)
        return first


def run_scheduler(app, interval: int | None = None, burst: bool = False) -> None:
    """Run the scheduler; outlive Redis outages (a fresh instance once Redis answers again)."""
    interval = interval or app.config["SCHEDULER_INTERVAL_SECONDS"]
    while True:
        try:
            with app.app_context():
                scheduler = AppScheduler(connection=redis_client.client, interval=interval, app=app)
                ids = register_periodic_jobs(app, scheduler)
            log.info("registered periodic jobs: %s", ", ".join(ids))
            scheduler.run(burst=burst)
            return
        except REDIS_ERRORS as exc:
            log.error("scheduler lost Redis (%s); retrying in %ss", exc.__class__.__name__, interval)
            time.sleep(interval)


def check_own_worker(app) -> int:
    """Healthcheck: 0 when a worker of this host beat within its TTL; one line either way."""
    host = socket.gethostname()
    try:
        live = heartbeats.live_workers(app.extensions["redis"], host=host)
    except REDIS_ERRORS as exc:
        print(f"unhealthy: Redis unreachable ({exc.__class__.__name__})")
        return 1
    if not live:
        print(f"unhealthy: no live worker on host {host}")
        return 1
    print(f"ok: {', '.join(live)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", action="store_true", help="run the periodic-job scheduler")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--queues", default=",".join(QUEUE_NAMES), help="comma-separated queues")
    parser.add_argument("--check", action="store_true", help="is this host's worker live? (exit 0/1)")
    args = parser.parse_args(argv)

    # Background: its Redis client rides through a failover longer than a web request may wait.
    with refusing_bad_config():
        app = create_app(overrides={"REDIS_BACKGROUND": True})
    if app.extensions.get("redis") is None:
        log.error("REDIS_URL is not set: without Redis, jobs run inline in the web process")
        return 2
    if args.check:
        return check_own_worker(app)
    metrics = (
        f"{app.config['METRICS_HOST']}:{app.config['METRICS_PORT']}" if app.config["METRICS_PORT"] else "none"
    )
    if args.scheduler:
        interval = app.config["SCHEDULER_INTERVAL_SECONDS"]
        log.info("%s", start_line("scheduler", "none", f"interval={interval}s", app.config))
        run_scheduler(app, burst=args.burst)
        return 0
    names = [name.strip() for name in args.queues.split(",") if name.strip()]
    unknown = sorted(set(names) - set(QUEUE_NAMES))
    if unknown:
        parser.error(f"unknown queues: {', '.join(unknown)}")
    log.info("%s", start_line("worker", metrics, f"processes=1 queues={','.join(names)}", app.config))
    # Its own families only: no empty http_*, cache_* or grpc_* ones.
    serve_process_metrics(app.config["METRICS_PORT"], app.config["METRICS_HOST"], families=("rq_",))
    run_worker(app, names, burst=args.burst)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
import time

from flask import Flask
from rq import SimpleWorker, worker_registration

from config import refusing_bad_config, start_line
from project import create_app, tracing
from project.extensions import redis_client
from project.jobs import QUEUE_NAMES, get_queue
from project.metrics import record_job, serve_process_metrics
from project.ops import heartbeats
from project.redis_client import REDIS_ERRORS
from project.schedule import AppScheduler, register_periodic_jobs

log = logging.getLogger("worker")


# How long past its timeout a job may still be marked running before RQ counts it abandoned.
ABANDONED_AFTER_TIMEOUT_SECONDS = 10


class AppWorker(SimpleWorker):
    """Runs jobs in this process (no fork per job: no pooled DB connection shared across a
    fork, and no fork cost per job), each inside its own app context."""

    flask_app: Flask | None = None  # set by run_worker before the worker starts
    _heartbeat: heartbeats.Heartbeat | None = None

    def perform_job(self, job, queue):
        started = time.perf_counter()
        assert self.flask_app is not None, "run_worker() sets the app"
        # The job's span continues the trace that queued it (project.tracing; nothing when off).
        with self.flask_app.app_context(), tracing.job_span(job.func_name, job.id, queue.name, job.meta):
            succeeded = super().perform_job(job, queue)
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
        """How long the job stays in the started registry without a heartbeat (this worker
        sends none while a job runs). RQ's default adds 60 s to the timeout; a job whose
        worker was killed thus waits a minute longer than it must before it is retried.
        The timeout ends a live job (SIGALRM), so a few seconds past it means a dead worker."""
        if job.timeout is None or job.timeout < 0:
            return super().get_heartbeat_ttl(job)
        return int(job.timeout) + ABANDONED_AFTER_TIMEOUT_SECONDS


def run_worker(app, queue_names: list[str], burst: bool = False) -> bool:
    AppWorker.flask_app = app
    with app.app_context():
        queues = [get_queue(name) for name in queue_names]
        worker = AppWorker(queues, connection=redis_client.client, name=heartbeats.worker_name())
    return worker.work(burst=burst, logging_level=app.config["LOG_LEVEL"])


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

"""Background processes.

`python worker.py`              RQ worker for every queue (email, stock, sync, cleanup)
`python worker.py --scheduler`  registers the periodic jobs with rq-scheduler and runs it

Both need `REDIS_URL`. Each job runs inside a fresh app context, so it has the database
session and config of the app, and leaves no session state behind for the next job.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from flask import Flask
from rq import SimpleWorker

from project import create_app
from project.extensions import redis_client
from project.jobs import QUEUE_NAMES, get_queue
from project.redis_client import REDIS_ERRORS
from project.schedule import AppScheduler, register_periodic_jobs

log = logging.getLogger("worker")


class AppWorker(SimpleWorker):
    """Runs jobs in this process (no fork per job: no pooled DB connection shared across a
    fork, and no fork cost per job), each inside its own app context."""

    flask_app: Flask  # set by run_worker before the worker starts

    def perform_job(self, job, queue):
        with self.flask_app.app_context():
            return super().perform_job(job, queue)


def run_worker(app, queue_names: list[str], burst: bool = False) -> bool:
    AppWorker.flask_app = app
    with app.app_context():
        queues = [get_queue(name) for name in queue_names]
        worker = AppWorker(queues, connection=redis_client.client)
    return worker.work(burst=burst, logging_level=app.config["LOG_LEVEL"])


def run_scheduler(app, interval: int = 5, burst: bool = False) -> None:
    """Run the scheduler; outlive Redis outages (a fresh instance once Redis answers again)."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scheduler", action="store_true", help="run the periodic-job scheduler")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--queues", default=",".join(QUEUE_NAMES), help="comma-separated queues")
    args = parser.parse_args(argv)

    app = create_app()
    if app.extensions.get("redis") is None:
        log.error("REDIS_URL is not set: without Redis, jobs run inline in the web process")
        return 2
    if args.scheduler:
        run_scheduler(app, burst=args.burst)
        return 0
    names = [name.strip() for name in args.queues.split(",") if name.strip()]
    unknown = sorted(set(names) - set(QUEUE_NAMES))
    if unknown:
        parser.error(f"unknown queues: {', '.join(unknown)}")
    run_worker(app, names, burst=args.burst)
    return 0


if __name__ == "__main__":
    sys.exit(main())

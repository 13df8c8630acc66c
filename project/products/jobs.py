"""Background jobs of the catalogue (run by `python worker.py`): the sync, queued by
`sync.start_sync` and run every PRODUCTS_SYNC_INTERVAL_MINUTES (`PERIODIC`)."""

from __future__ import annotations

import uuid

from rq import get_current_job

from project.jobs import PeriodicJob
from project.products.sync import run_sync


class SyncFailed(RuntimeError):
    """Raised so that RQ retries the job with its backoff."""


def sync_products_job(job_id: str | None = None) -> dict | None:
    job = get_current_job()
    job_id = job_id or (job.id if job else str(uuid.uuid4()))
    run = run_sync(job_id)
    if run is None:
        return None
    if run.status == "failed":
        raise SyncFailed(run.error)
    return {"created": run.created, "updated": run.updated, "failed": run.failed}


PERIODIC = (
    PeriodicJob(
        id="periodic-products-sync",
        func=sync_products_job,
        queue="sync",
        interval_config="PRODUCTS_SYNC_INTERVAL_MINUTES",
    ),
)

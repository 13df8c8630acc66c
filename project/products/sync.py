"""The upstream catalogue sync: fetch every page, then bulk-upsert by external_id.

All rows are written in one transaction after the whole catalogue has been fetched, so an
upstream failure half-way changes nothing. A run is a `SyncRun` row; the database allows one
`running` run at a time (a partial unique index), which is the lock across every process,
with or without Redis.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from project.database import utcnow
from project.errors import ServiceUnavailable
from project.extensions import db
from project.jobs import enqueue
from project.products.hooks import held_units
from project.products.models import Product, SyncRun
from project.products.service import invalidate_cache
from project.products.upstream import UpstreamProduct, get_provider

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# A run still "running" after this long died with its worker (the job timeout is shorter).
STALE_RUN_AFTER = timedelta(minutes=30)
MAX_ERROR_DETAILS = 5
UPDATED_COLUMNS = ("sku", "name", "description", "price", "category", "updated_at")

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _start_run(job_id: str) -> SyncRun | None:
    """Take the lock: insert the one `running` run, or None when another run holds it."""
    db.session.execute(
        update(SyncRun)
        .where(SyncRun.status == "running", SyncRun.started_at < utcnow() - STALE_RUN_AFTER)
        .values(status="failed", finished_at=utcnow(), error="Abandoned: its worker stopped.")
    )
    run = SyncRun(job_id=job_id[:64], status="running", started_at=utcnow())
    db.session.add(run)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return run


def _fetch(progress: Progress | None) -> tuple[list[UpstreamProduct], list[str]]:
    provider = get_provider(current_app.config)
    products: dict[str, UpstreamProduct] = {}
    failures: list[str] = []
    seen = 0
    for page in provider.pages():
        for row in page.rows:
            try:
                product = provider.parse(row)
            except ValueError as exc:
                failures.append(f"id {row.get('id')!r}: {exc}")
                continue
            products[product.external_id] = product  # a repeated id: the last copy wins
        seen += len(page.rows)
        if progress:
            progress("fetch", seen, max(page.total, seen))
    unique: list[UpstreamProduct] = []
    skus: set[str] = set()
    for product in products.values():
        if product.sku in skus:
            failures.append(f"id {product.external_id!r}: sku {product.sku!r} repeated upstream")
            continue
        skus.add(product.sku)
        unique.append(product)
    return unique, failures


def _insert():
    dialect = db.session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert


def _upsert_batch(batch: list[UpstreamProduct], failures: list[str]) -> tuple[int, int]:
    """Two reads and one INSERT ... ON CONFLICT per batch; returns (created, updated)."""
    ids = [p.external_id for p in batch]
    existing = set(db.session.scalars(select(Product.external_id).where(Product.external_id.in_(ids))))
    owners = dict(
        db.session.execute(
            select(Product.sku, Product.external_id).where(Product.sku.in_([p.sku for p in batch]))
        ).all()
    )
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for p in batch:
        if owners.get(p.sku, p.external_id) != p.external_id:
            failures.append(f"id {p.external_id!r}: sku {p.sku!r} belongs to another product")
            continue
        rows.append(
            {
                "external_id": p.external_id,
                "sku": p.sku,
                "name": p.name,
                "description": p.description,
                "price": p.price,
                "stock": p.stock,
                "category": p.category,
                "created_at": now,
                "updated_at": now,
            }
        )
    if not rows:
        return 0, 0
    # One cached INSERT ... ON CONFLICT executed for the whole batch; with RETURNING,
    # SQLAlchemy's "insertmanyvalues" sends it as multi-row VALUES pages (few round trips).
    table = Product.__table__
    stmt = _insert()(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.external_id],
        set_={**{name: stmt.excluded[name] for name in UPDATED_COLUMNS}, "stock": _synced_stock(stmt)},
    ).returning(table.c.id)
    db.session.execute(stmt, rows).all()
    updated = sum(1 for row in rows if row["external_id"] in existing)
    return len(rows) - updated, updated


def _synced_stock(stmt):
    """Upstream stock less what reserved orders hold here, never below zero.

    Reserved units were already taken off the local stock; writing the upstream figure over
    them would sell those units twice.
    """
    available = stmt.excluded.stock - held_units(Product.__table__.c.id)
    return case((available < 0, 0), else_=available)


def _summary(failures: list[str]) -> str | None:
    if not failures:
        return None
    shown = "; ".join(failures[:MAX_ERROR_DETAILS])
    more = len(failures) - MAX_ERROR_DETAILS
    return f"{len(failures)} upstream products skipped: {shown}" + (f"; and {more} more" if more > 0 else "")


def run_sync(job_id: str, progress: Progress | None = None) -> SyncRun | None:
    """One sync; None when another sync is running. Never raises for upstream failures:
    the run records them (status `failed`, `error`)."""
    run = _start_run(job_id)
    if run is None:
        log.info("products sync %s skipped: another sync is running", job_id)
        return None
    run_id = run.id
    try:
        products, failures = _fetch(progress)
        created = updated = 0
        for start in range(0, len(products), BATCH_SIZE):
            batch_created, batch_updated = _upsert_batch(products[start : start + BATCH_SIZE], failures)
            created += batch_created
            updated += batch_updated
            if progress:
                progress("save", min(start + BATCH_SIZE, len(products)), len(products))
        run.status = "succeeded"
        run.created, run.updated, run.failed = created, updated, len(failures)
        run.error = _summary(failures)
        run.finished_at = utcnow()
        db.session.commit()
        log.info(
            "products sync %s: %s created, %s updated, %s failed", job_id, created, updated, len(failures)
        )
    except Exception as exc:
        db.session.rollback()
        log.warning("products sync %s failed: %s", job_id, exc)
        run = db.session.get_one(SyncRun, run_id)  # committed by _start_run
        run.status = "failed"
        run.created = run.updated = 0
        run.error = (str(exc) or exc.__class__.__name__)[:2000]
        run.finished_at = utcnow()
        db.session.commit()
    finally:
        invalidate_cache()
    return run


def last_run() -> SyncRun | None:
    return db.session.scalars(
        select(SyncRun).order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(1)
    ).first()


# Seconds before each retry of a failed sync job (run by the scheduler process at its time).
RETRY_BACKOFF = (30, 120, 300)
# The job start_sync queues, by path: jobs.py imports this module (the job runs run_sync).
SYNC_JOB = "project.products.jobs.sync_products_job"


def start_sync() -> dict[str, str]:
    """Queue a sync now (inline when there is no Redis); 503 when the queue is down."""
    job_id = str(uuid.uuid4())
    job = enqueue(
        "sync",
        SYNC_JOB,
        job_id,
        job_id=job_id,
        retries=len(RETRY_BACKOFF),
        backoff=RETRY_BACKOFF,
        timeout=600,
    )
    if job is None:
        raise ServiceUnavailable("The job queue is unavailable, try again later.")
    return {"job_id": job_id}


def sync_status() -> dict[str, Any]:
    run = last_run()
    if run is None:
        return {"last_run": None}
    fields = ("job_id", "status", "started_at", "finished_at", "created", "updated", "failed", "error")
    return {"last_run": {name: getattr(run, name) for name in fields}}

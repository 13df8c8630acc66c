"""Orders fixtures: order helpers, and real `python worker.py --burst` processes for the
PostgreSQL + Redis tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from project.extensions import db
from project.products.models import Product

ROOT = Path(__file__).resolve().parents[2]
ORDERS = "/api/v1/orders"


@pytest.fixture
def stock_of(app):
    def read(product_id: int) -> int:
        with app.app_context():
            return db.session.get(Product, product_id).stock

    return read


@pytest.fixture
def place(client):
    """`place(headers, [(product_id, quantity), ...], key=None)` -> the POST response."""

    def post(headers: dict, lines, key: str | None = None):
        body = {"items": [{"product_id": pid, "quantity": qty} for pid, qty in lines]}
        extra = {"Idempotency-Key": key} if key else {}
        return client.post(ORDERS, json=body, headers={**headers, **extra})

    return post


@pytest.fixture
def in_app(app):
    """`in_app(func, *args)`: call a job function as a worker would, inside an app context."""

    def call(func, *args, **kwargs):
        with app.app_context():
            return func(*args, **kwargs)

    return call


@pytest.fixture
def worker_processes():
    """`worker_processes(n)`: run n real `python worker.py --burst` processes to completion."""

    def run(n: int = 1, timeout: float = 120) -> None:
        env = {
            **os.environ,
            "APP_ENV": "development",
            "DATABASE_URL": os.environ["TEST_DATABASE_URL"],
            "REDIS_URL": os.environ["TEST_REDIS_URL"],
            "LOG_LEVEL": "WARNING",
        }
        procs = [
            subprocess.Popen(
                [sys.executable, "worker.py", "--burst", "--queues", "stock"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for _ in range(n)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err.decode()[-2000:]

    return run


@pytest.fixture
def enqueue_fails(monkeypatch):
    """`with enqueue_fails(): ...` — every enqueue inside meets a Redis that is down."""
    import contextlib

    import redis

    from project import jobs as queue_jobs

    class DownQueue:
        def enqueue(self, *args, **kwargs):
            raise redis.exceptions.ConnectionError("Redis is down")

    @contextlib.contextmanager
    def down():
        with monkeypatch.context() as patch:
            patch.setattr(queue_jobs, "get_queue", lambda name: DownQueue())
            yield

    return down

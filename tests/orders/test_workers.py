"""Concurrency on the real PostgreSQL with real RQ worker processes (`python worker.py --burst`).

Requests are POSTed from threads (each its own test client and database session); the
reservations run in separate worker processes against the same database and Redis.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg2
import pytest
from sqlalchemy import case, select, update

from project import jobs as queue_jobs
from project.database import utcnow
from project.extensions import db
from project.orders import jobs as order_jobs
from project.orders.models import Order
from tests.helpers import wait_for

ORDERS = "/api/v1/orders"


pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def _concurrently(app, calls):
    """Run `calls` (each `fn(client)`) at once from threads; returns their results in order."""

    def run(call):
        return call(app.test_client())

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _statuses(client, headers) -> Counter:
    page = client.get(f"{ORDERS}?per_page=100", headers=headers).get_json()
    return Counter(order["status"] for order in page["items"])


def test_forty_concurrent_orders_against_stock_ten(
    app, client, make_product, stock_of, make_user, auth_headers, admin_headers, worker_processes
):
    pid = make_product(stock=10)["id"]
    headers = [auth_headers(make_user()) for _ in range(8)]
    body = {"items": [{"product_id": pid, "quantity": 1}]}
    responses = _concurrently(
        app, [lambda c, h=headers[i % 8]: c.post(ORDERS, json=body, headers=h) for i in range(40)]
    )
    assert [r.status_code for r in responses] == [202] * 40
    assert len({r.get_json()["id"] for r in responses}) == 40

    worker_processes(4)

    assert _statuses(client, admin_headers) == {"reserved": 10, "failed": 30}
    assert stock_of(pid) == 0


def test_concurrent_cancels_return_the_stock_once(
    app, client, place, make_product, stock_of, user_headers, worker_processes
):
    pid = make_product(stock=5)["id"]
    order_id = place(user_headers, [(pid, 3)]).get_json()["id"]
    worker_processes(1)
    assert stock_of(pid) == 2
    responses = _concurrently(
        app, [lambda c: c.post(f"{ORDERS}/{order_id}/cancel", headers=user_headers) for _ in range(8)]
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 7
    assert stock_of(pid) == 5


def test_concurrent_pay_and_cancel_one_wins(
    app, place, make_product, stock_of, user_headers, worker_processes
):
    pid = make_product(stock=5)["id"]
    order_id = place(user_headers, [(pid, 2)]).get_json()["id"]
    worker_processes(1)
    actions = ["pay", "cancel"] * 4
    responses = _concurrently(
        app, [lambda c, a=a: c.post(f"{ORDERS}/{order_id}/{a}", headers=user_headers) for a in actions]
    )
    winners = [r.get_json()["status"] for r in responses if r.status_code == 200]
    assert len(winners) == 1
    assert sorted(r.status_code for r in responses) == [200] + [409] * 7
    assert stock_of(pid) == (3 if winners == ["paid"] else 5)


def test_a_drain_delivered_twice_reserves_once(
    app, client, place, make_product, stock_of, user_headers, worker_processes
):
    pid = make_product(stock=5)["id"]
    order_id = place(user_headers, [(pid, 2)]).get_json()["id"]
    with app.app_context():
        for n in range(3):
            queue_jobs.enqueue("stock", order_jobs.drain_orders, job_id=f"dup-{n}")
    worker_processes(2)
    assert client.get(f"{ORDERS}/{order_id}", headers=user_headers).get_json()["status"] == "reserved"
    assert stock_of(pid) == 3


def test_concurrent_posts_with_one_idempotency_key_make_one_order(
    app, client, make_product, user_headers, worker_processes, stock_of
):
    pid = make_product(stock=5)["id"]
    body = {"items": [{"product_id": pid, "quantity": 1}]}
    headers = {**user_headers, "Idempotency-Key": "same-click"}
    responses = _concurrently(app, [lambda c: c.post(ORDERS, json=body, headers=headers) for _ in range(10)])
    assert {r.status_code for r in responses} == {202}
    assert len({r.get_json()["id"] for r in responses}) == 1
    worker_processes(1)
    assert stock_of(pid) == 4


def _age(app, order_id: int, minutes: int) -> None:
    """Move the order's timestamps into the past, as if it had waited that long."""
    old = utcnow() - timedelta(minutes=minutes)
    with app.app_context():
        db.session.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(
                created_at=old,
                updated_at=old,
                reserved_at=case((Order.reserved_at.is_(None), None), else_=old),
            )
        )
        db.session.commit()


def test_an_order_whose_enqueue_failed_is_reserved_after_recovery(
    app, client, place, make_product, stock_of, user_headers, worker_processes, enqueue_fails
):
    pid = make_product(stock=5)["id"]
    with enqueue_fails():
        response = place(user_headers, [(pid, 2)])
    assert response.status_code == 202
    order_id = response.get_json()["id"]
    worker_processes(1)
    assert client.get(f"{ORDERS}/{order_id}", headers=user_headers).get_json()["status"] == "pending"

    # The recovery job itself runs in a worker, as the scheduler would have it; the worker
    # process has the default grace period (60 s), so the order is made older than that.
    _age(app, order_id, minutes=2)
    with app.app_context():
        queue_jobs.enqueue("stock", order_jobs.requeue_lost_orders, job_id="recovery")
    worker_processes(1)  # runs the recovery job, then the reservation it queued
    assert client.get(f"{ORDERS}/{order_id}", headers=user_headers).get_json()["status"] == "reserved"
    assert stock_of(pid) == 3


def test_concurrent_drains_take_each_order_once(
    app, client, make_product, stock_of, make_user, auth_headers, admin_headers, worker_processes
):
    pids = [make_product(stock=1000)["id"] for _ in range(3)]
    headers = [auth_headers(make_user()) for _ in range(4)]
    calls = [
        lambda c, i=i: c.post(
            ORDERS,
            json={"items": [{"product_id": pid, "quantity": 1 + i % 3} for pid in pids[: 1 + i % 3]]},
            headers=headers[i % 4],
        )
        for i in range(60)
    ]
    responses = _concurrently(app, calls)
    assert [r.status_code for r in responses] == [202] * 60
    with app.app_context():  # and more drains than workers, so they overlap
        for n in range(6):
            queue_jobs.enqueue("stock", order_jobs.drain_orders, job_id=f"{order_jobs.DRAIN_JOB_PREFIX}x{n}")

    worker_processes(4)

    assert _statuses(client, admin_headers) == {"reserved": 60}
    taken = {pid: 0 for pid in pids}
    for i in range(60):
        for pid in pids[: 1 + i % 3]:
            taken[pid] += 1 + i % 3
    assert [stock_of(pid) for pid in pids] == [1000 - taken[pid] for pid in pids]


def test_overlapping_batches_never_oversell(
    app, client, make_product, stock_of, make_user, auth_headers, worker_processes
):
    scarce, plenty = make_product(stock=150)["id"], make_product(stock=10_000)["id"]
    headers = [auth_headers(make_user()) for _ in range(8)]
    body = {"items": [{"product_id": scarce, "quantity": 1}, {"product_id": plenty, "quantity": 1}]}
    # More orders than one batch holds (RESERVE_BATCH), so the drains' batches overlap in time.
    count = 3 * order_jobs.RESERVE_BATCH + 20
    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(
            pool.map(
                lambda i: app.test_client().post(ORDERS, json=body, headers=headers[i % 8]).status_code,
                range(count),
            )
        )
    assert codes == [202] * count
    with app.app_context():
        for n in range(6):
            queue_jobs.enqueue("stock", order_jobs.drain_orders, job_id=f"{order_jobs.DRAIN_JOB_PREFIX}b{n}")

    worker_processes(4)

    with app.app_context():
        statuses = Counter(db.session.scalars(select(Order.status)))
    assert statuses == {"reserved": 150, "failed": count - 150}
    assert (stock_of(scarce), stock_of(plenty)) == (0, 10_000 - 150)


@contextlib.contextmanager
def _product_row_locked(product_id: int):
    """Hold the product's row lock from another connection, as a stock update would (NO KEY:
    new order lines may still reference the row)."""
    conn = psycopg2.connect(os.environ["TEST_DATABASE_URL"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM products WHERE id = %s FOR NO KEY UPDATE", (product_id,))
        yield
    finally:
        conn.rollback()
        conn.close()


def _backends_waiting_on_a_lock() -> list[int]:
    conn = psycopg2.connect(os.environ["TEST_DATABASE_URL"])
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def _terminate_backend(pid: int) -> None:
    conn = psycopg2.connect(os.environ["TEST_DATABASE_URL"])
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        conn.close()


def _status(client, headers, order_id: int) -> str:
    return client.get(f"{ORDERS}/{order_id}", headers=headers).get_json()["status"]


def test_a_reservation_whose_connection_is_killed_is_retried_and_reserved(
    client, place, make_product, stock_of, user_headers, app_process
):
    pid = make_product(stock=5)["id"]
    with _product_row_locked(pid):
        order_id = place(user_headers, [(pid, 2)]).get_json()["id"]
        worker = app_process("worker.py", "--queues", "stock")
        # The reservation is under way: its transaction waits for the product's row lock.
        [backend] = wait_for(_backends_waiting_on_a_lock, what="the worker's reservation")
        _terminate_backend(backend)  # its connection dies under the job
    app_process("worker.py", "--scheduler")  # queues the retry when it is due (5 s)

    wait_for(lambda: _status(client, user_headers, order_id) != "pending", what="the retry")
    assert _status(client, user_headers, order_id) == "reserved"
    assert stock_of(pid) == 3
    log = worker.log_path.read_text()
    assert "scheduled for retry" in log, log[-3000:]


@pytest.mark.app_config(ORDERS_RESERVE_TIMEOUT_SECONDS=2)
def test_a_worker_killed_mid_reservation_leaves_no_order_pending(
    client, place, make_product, stock_of, user_headers, app_process
):
    pid = make_product(stock=5)["id"]
    with _product_row_locked(pid):
        order_id = place(user_headers, [(pid, 2)]).get_json()["id"]
        worker = app_process("worker.py", "--queues", "stock")
        wait_for(_backends_waiting_on_a_lock, what="the worker's reservation")
        os.kill(worker.pid, signal.SIGKILL)  # mid-transaction: nothing committed
        worker.wait()
    assert _status(client, user_headers, order_id) == "pending"
    assert stock_of(pid) == 5

    # A fresh worker, and the scheduler running the safety net every second (the worker that
    # runs it reads ORDERS_REQUEUE_AFTER_SECONDS): RQ counts the job abandoned once its
    # timeout (2 s) is well past, retries it after its backoff, and the order is reserved.
    app_process("worker.py", "--queues", "stock", ORDERS_REQUEUE_AFTER_SECONDS=0)
    app_process("worker.py", "--scheduler", ORDERS_RECOVERY_INTERVAL_SECONDS=1)
    wait_for(lambda: _status(client, user_headers, order_id) != "pending", what="the safety net")
    assert _status(client, user_headers, order_id) == "reserved"
    assert stock_of(pid) == 3


def test_expiry_in_a_worker_returns_the_stock(
    app, client, place, make_product, stock_of, user_headers, worker_processes
):
    pid = make_product(stock=5)["id"]
    order_id = place(user_headers, [(pid, 2)]).get_json()["id"]
    worker_processes(1)
    assert stock_of(pid) == 3
    # Worker processes read RESERVATION_TTL_MINUTES from their config (15): age the order instead.
    _age(app, order_id, minutes=16)
    with app.app_context():
        queue_jobs.enqueue("stock", order_jobs.expire_reservations, job_id="expiry")
    worker_processes(2)
    body = client.get(f"{ORDERS}/{order_id}", headers=user_headers).get_json()
    assert body["status"] == "cancelled"
    assert stock_of(pid) == 5

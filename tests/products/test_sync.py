"""The upstream catalogue sync: job, status, lock, failures, CLI."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from project.database import utcnow
from project.extensions import db
from project.products.models import SyncRun
from tests.helpers import wait_for

API = "/api/v1/products"


def sync_now(client, admin_headers, run_jobs) -> dict:
    response = client.post(f"{API}/sync", headers=admin_headers)
    assert response.status_code == 202, response.get_json()
    job_id = response.get_json()["job_id"]
    run_jobs(("sync",))
    status = client.get(f"{API}/sync/status", headers=admin_headers)
    assert status.status_code == 200
    return {"job_id": job_id, **status.get_json()}


def all_products(client) -> dict[str, dict]:
    items = client.get(f"{API}?per_page=100").get_json()["items"]
    return {p["external_id"]: p for p in items}


def test_status_is_null_before_the_first_run(client, admin_headers):
    assert client.get(f"{API}/sync/status", headers=admin_headers).get_json() == {"last_run": None}


@pytest.mark.parametrize("method, path", [("post", "/sync"), ("get", "/sync/status")])
def test_sync_routes_are_admin_only(client, user_headers, method, path):
    assert getattr(client, method)(f"{API}{path}").status_code == 401
    assert getattr(client, method)(f"{API}{path}", headers=user_headers).status_code == 403


def test_sync_creates_every_upstream_product(client, admin_headers, upstream, run_jobs):
    result = sync_now(client, admin_headers, run_jobs)
    run = result["last_run"]
    assert run["job_id"] == result["job_id"]
    assert run["status"] == "succeeded" and run["error"] is None
    assert (run["created"], run["updated"], run["failed"]) == (12, 0, 0)
    assert run["started_at"] <= run["finished_at"]
    products = all_products(client)
    assert len(products) == 12
    assert products["4"]["sku"] == "UP-SKU-4" and products["3"]["sku"] == "EXT-3"
    assert products["1"]["name"] == "Upstream item 1" and products["1"]["price"] == 6.25
    assert products["1"]["category"] == "groceries" and products["1"]["stock"] == 3
    # paged with limit/skip, 5 at a time
    assert [r["skip"] for r in upstream.requests] == [0, 5, 10]


def test_a_second_sync_updates_creates_and_leaves_vanished_products(
    client, admin_headers, upstream, run_jobs
):
    sync_now(client, admin_headers, run_jobs)
    upstream.products = [p for p in upstream.products if p["id"] != 2]
    upstream.products[0] = {**upstream.products[0], "price": 99.5, "title": "Renamed"}
    upstream.products.append(
        {
            "id": 100,
            "title": "Brand new",
            "description": "",
            "price": 1,
            "stock": 0,
            "category": "new",
            "sku": "NEW-100",
        }
    )
    run = sync_now(client, admin_headers, run_jobs)["last_run"]
    assert (run["status"], run["created"], run["updated"], run["failed"]) == ("succeeded", 1, 11, 0)
    products = all_products(client)
    assert len(products) == 13
    assert products["1"]["name"] == "Renamed" and products["1"]["price"] == 99.5
    assert products["100"]["sku"] == "NEW-100"
    assert products["2"]["name"] == "Upstream item 2"  # vanished upstream: left as it was


def test_a_second_sync_keeps_units_held_by_reserved_orders(
    client, admin_headers, user_headers, upstream, run_jobs
):
    sync_now(client, admin_headers, run_jobs)
    product = all_products(client)["1"]
    assert product["stock"] == 3
    order = client.post(
        "/api/v1/orders", json={"items": [{"product_id": product["id"], "quantity": 2}]}, headers=user_headers
    )
    run_jobs(("stock",))
    assert client.get(f"/api/v1/orders/{order.get_json()['id']}", headers=user_headers).get_json()[
        "status"
    ] == ("reserved")
    assert all_products(client)["1"]["stock"] == 1

    upstream.products[0] = {**upstream.products[0], "stock": 10}
    sync_now(client, admin_headers, run_jobs)
    # 10 upstream, 2 held by the reserved order: 8 left to sell, never 10 on top of the 2.
    assert all_products(client)["1"]["stock"] == 8

    upstream.products[0] = {**upstream.products[0], "stock": 1}
    sync_now(client, admin_headers, run_jobs)
    assert all_products(client)["1"]["stock"] == 0


def test_an_upstream_failure_mid_sync_fails_the_run_and_changes_nothing(
    client, admin_headers, upstream, run_jobs
):
    upstream.fail_at_skip = 5
    run = sync_now(client, admin_headers, run_jobs)["last_run"]
    assert run["status"] == "failed" and "500" in run["error"]
    assert (run["created"], run["updated"]) == (0, 0)
    assert client.get(API).get_json()["total"] == 0


@pytest.mark.postgres
@pytest.mark.redis
def test_a_failed_sync_is_retried_at_its_time_and_succeeds(
    app, client, admin_headers, upstream, app_process, monkeypatch
):
    """Real worker and scheduler processes: the retry RQ parks is queued by the scheduler."""
    from project.products import sync

    monkeypatch.setattr(sync, "RETRY_BACKOFF", (3,))  # baked into the job when it is queued
    upstream.fail_at_skip = 0
    job_id = client.post(f"{API}/sync", headers=admin_headers).get_json()["job_id"]
    app_process("worker.py", "--queues", "sync", PRODUCTS_SYNC_URL=upstream.url)
    app_process("worker.py", "--scheduler")

    def runs_of_the_job() -> list[str]:
        with app.app_context():
            rows = db.session.scalars(select(SyncRun).where(SyncRun.job_id == job_id).order_by(SyncRun.id))
            return [run.status for run in rows]

    wait_for(lambda: runs_of_the_job() == ["failed"], what="the first try")
    upstream.fail_at_skip = None
    wait_for(lambda: runs_of_the_job() == ["failed", "succeeded"], what="the retry")
    assert client.get(API).get_json()["total"] == 12


def test_unreachable_upstream_fails_the_run(app, client, admin_headers, run_jobs):
    app.config["PRODUCTS_SYNC_URL"] = "http://127.0.0.1:1/products"
    run = sync_now(client, admin_headers, run_jobs)["last_run"]
    assert run["status"] == "failed" and "unreachable" in run["error"]


def test_invalid_rows_and_taken_skus_are_counted_as_failed(
    client, admin_headers, make_product, upstream, run_jobs
):
    make_product(sku="EXT-5")  # an admin product already owns this SKU
    upstream.products[0]["price"] = -3
    upstream.products[1]["sku"] = "UP-SKU-4"  # repeated upstream
    upstream.products.append({"id": 50, "price": 1})  # no title
    run = sync_now(client, admin_headers, run_jobs)["last_run"]
    assert run["status"] == "succeeded"
    assert (run["created"], run["failed"]) == (9, 4)
    assert "4 upstream products skipped" in run["error"] and "price" in run["error"]
    # the first upstream product with a SKU keeps it
    assert set(all_products(client)) - {None} == {"2", "3", "6", "7", "8", "9", "10", "11", "12"}


def test_a_running_sync_holds_the_lock(app, client, admin_headers, upstream, run_jobs):
    with app.app_context():
        db.session.add(SyncRun(job_id="other", status="running", started_at=utcnow()))
        db.session.commit()
    result = sync_now(client, admin_headers, run_jobs)
    assert result["last_run"]["job_id"] == "other" and result["last_run"]["status"] == "running"
    assert client.get(API).get_json()["total"] == 0


def test_an_abandoned_running_sync_does_not_block_forever(app, client, admin_headers, upstream, run_jobs):
    with app.app_context():
        db.session.add(SyncRun(job_id="dead", status="running", started_at=utcnow() - timedelta(hours=2)))
        db.session.commit()
    result = sync_now(client, admin_headers, run_jobs)
    assert result["last_run"]["status"] == "succeeded"
    with app.app_context():
        dead = db.session.query(SyncRun).filter_by(job_id="dead").one()
        assert dead.status == "failed" and "Abandoned" in dead.error


@pytest.mark.app_config(REDIS_URL=None)
def test_without_redis_the_sync_runs_inline(client, admin_headers, upstream):
    response = client.post(f"{API}/sync", headers=admin_headers)
    assert response.status_code == 202
    run = client.get(f"{API}/sync/status", headers=admin_headers).get_json()["last_run"]
    assert run["job_id"] == response.get_json()["job_id"] and run["status"] == "succeeded"
    assert client.get(API).get_json()["total"] == 12


@pytest.mark.usefixtures("redis_down")
def test_sync_with_the_queue_down_is_503(client, admin_headers):
    response = client.post(f"{API}/sync", headers=admin_headers)
    assert response.status_code == 503 and response.get_json()["code"] == 503
    assert response.headers["Retry-After"] == "5"  # worth retrying soon: Retry-After on 503 too


def test_the_scheduled_job_function_runs_a_sync(app, upstream):
    from project.products.jobs import sync_products_job

    with app.app_context():
        assert sync_products_job() == {"created": 12, "updated": 0, "failed": 0}


# --- CLI -----------------------------------------------------------------------------


def test_cli_sync_runs_in_the_foreground(app, client, upstream):
    result = app.test_cli_runner().invoke(args=["products", "sync"])
    assert result.exit_code == 0, result.output
    assert "Sync succeeded: 12 created, 0 updated, 0 failed." in result.output
    assert client.get(API).get_json()["total"] == 12


def test_cli_sync_progress_is_log_lines_when_not_on_a_terminal(app, upstream):
    import io

    handler = app.extensions["log_handler"]
    buffer = io.StringIO()
    old = handler.setStream(buffer)
    try:
        result = app.test_cli_runner().invoke(args=["products", "sync"])
    finally:
        handler.setStream(old)
    assert result.exit_code == 0, result.output
    lines = buffer.getvalue().splitlines()
    progress = [line.split(" cli: ", 1)[1] for line in lines if " cli: " in line]
    assert progress[0] == "Fetching upstream: 5/12" and progress[-1] == "Saving products: 12/12"
    assert "Fetching upstream: 12/12" in progress
    assert "\r" not in buffer.getvalue() and "\r" not in result.output  # no bar drawing


def test_cli_sync_draws_a_bar_on_a_terminal_and_logs_never_share_its_line(database_url, upstream, tmp_path):
    """A real terminal (a pty): the bar is drawn, and a log line first clears the bar's line."""
    import os
    import pty
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "PRODUCTS_SYNC_URL": upstream.url,
        "PRODUCTS_SYNC_PAGE_SIZE": "5",
        "LOG_FORMAT": "plain",
        "FLASK_SKIP_DOTENV": "1",
    }
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "products", "sync"],
        cwd=root,
        env=env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=60) == 0
    os.close(leader)
    output = b"".join(chunks).decode(errors="replace")
    assert "Fetching upstream" in output and "Saving products" in output and "12/12" in output
    assert "Sync succeeded: 12 created, 0 updated, 0 failed." in output
    # The sync's own log line, written while the bar is up, first clears the bar's line: what the
    # terminal shows on that line (after the last carriage return) is the log line alone.
    log_at = output.index("products sync cli-")
    shown = output[output.rfind("\r", 0, log_at) : log_at]
    assert re.match(r"\r\x1b\[K\d{4}-\d\d-\d\dT[\d:.]+Z INFO ", shown), repr(shown)


def test_cli_sync_reports_a_failure(app, upstream):
    upstream.fail_at_skip = 5
    result = app.test_cli_runner().invoke(args=["products", "sync"])
    assert result.exit_code != 0 and "Sync failed" in result.output

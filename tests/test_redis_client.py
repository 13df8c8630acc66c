"""The one Redis helper: URL forms, every part on the app's client, and a demoted master
(READONLY) treated as the outage it is. Sentinel failovers and TLS for real:
tests/topology/test_hosts_*.py."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import redis

from project import create_app
from project.extensions import db
from project.redis_client import REDIS_ERRORS, TIMEOUT_SECONDS, connect, parse_sentinel_url
from tests.helpers import free_port, wait_for


def test_sentinel_url_forms():
    hosts, service, options = parse_sentinel_url(
        "redis+sentinel://:s%40cret@10.0.0.1:26379,10.0.0.2:26380,sentinel-c/cache/3?socket_timeout=0.5"
    )
    assert hosts == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("sentinel-c", 26379)]
    assert service == "cache"
    assert options == {"password": "s@cret", "db": 3, "socket_timeout": 0.5}
    assert parse_sentinel_url("redis+sentinel://h:1/mymaster")[2] == {"db": 0}
    assert parse_sentinel_url("redis+sentinel://h:1/m?ssl=true&ssl_ca_certs=/ca.pem")[2] == {
        "db": 0,
        "ssl": True,
        "ssl_ca_certs": "/ca.pem",
    }


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://:hunter2@h:26379",  # no service
        "redis+sentinel://:hunter2@h:port/mymaster",
        "redis+sentinel://:hunter2@h:26379/mymaster/zero",
        "redis+sentinel://:hunter2@h:26379/mymaster/0/extra",
        "redis+sentinel://:hunter2@/mymaster",
    ],
)
def test_a_bad_sentinel_url_names_the_form_never_the_password(url):
    with pytest.raises(ValueError) as exc:
        parse_sentinel_url(url)
    assert "REDIS_URL" in str(exc.value) and "hunter2" not in str(exc.value)


def test_a_sentinel_url_gives_a_client_of_the_services_master():
    client = connect("redis+sentinel://127.0.0.1:1,127.0.0.1:2/orders/4")
    pool = client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool)
    assert pool.service_name == "orders" and pool.connection_kwargs["db"] == 4
    # Our timeouts, to the sentinels too: a dead sentinel is skipped in a second, not hung on.
    assert pool.connection_kwargs["socket_timeout"] == TIMEOUT_SECONDS
    assert all(
        s.connection_pool.connection_kwargs["socket_timeout"] == TIMEOUT_SECONDS
        for s in pool.sentinel_manager.sentinels
    )
    with pytest.raises(REDIS_ERRORS):  # no sentinel answers: an outage like any other
        client.ping()


def test_a_demoted_master_is_an_outage():
    assert issubclass(redis.exceptions.ReadOnlyError, REDIS_ERRORS)


@pytest.mark.redis
@pytest.mark.app_config(RATELIMIT_ENABLED=True)
def test_rate_limits_and_the_dashboard_use_the_apps_client(app):
    from flask_limiter import Limiter

    from project.extensions import limiter
    from project.ops import dashboard

    client = app.extensions["redis"]
    storage = limiter.storage
    assert isinstance(limiter, Limiter) and storage is not None
    assert storage.get_connection().connection_pool is client.connection_pool  # type: ignore[attr-defined]
    with app.test_request_context():
        assert dashboard._app_client("redis://elsewhere:1/0") == (None, client)


@pytest.fixture
def private_redis():
    """A Redis of this test's own on a free port (we demote it: never the shared one)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server on this machine")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        probe = redis.Redis(port=port, socket_timeout=2)
        wait_for(lambda: _answers(probe), timeout=10, what="the private Redis")
        yield port, probe
    finally:
        server.terminate()
        server.wait(timeout=10)


def _answers(probe: redis.Redis) -> bool:
    try:
        return bool(probe.ping())
    except redis.ConnectionError:
        return False


@pytest.mark.postgres
def test_a_demoted_master_serves_from_the_database_and_never_the_old_data(
    database_url, private_redis, admin, user, auth_headers, make_product
):
    """Pointed at a master that is demoted under it (its data kept, writes refused): reads
    come from the database, the write's invalidation is owed and paid when Redis takes writes
    again (also for another process), the order is stored and answered 202, and
    /health/full says Redis is down (PING alone would say ok)."""
    port, probe = private_redis
    url = f"redis://127.0.0.1:{port}/0"
    apps = [
        create_app(app_env="testing", overrides={"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": url})
    ]
    try:
        web = apps[0].test_client()
        product = make_product(stock=5)
        path = f"/api/v1/products/{product['id']}"
        assert web.get(path).headers["X-Cache"] == "MISS"
        assert web.get(path).headers["X-Cache"] == "HIT"

        probe.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # a master nobody runs
        wait_for(lambda: probe.info("replication")["role"] == "slave", timeout=10, what="the demotion")
        admin_headers, user_headers = auth_headers(admin), auth_headers(user)
        written = web.patch(f"{path}/stock", json={"delta": 3}, headers=admin_headers)
        assert written.status_code == 200 and written.get_json()["stock"] == 8
        read = web.get(path)
        assert read.status_code == 200 and read.get_json()["stock"] == 8, read.headers.get("X-Cache")
        order = web.post(
            "/api/v1/orders",
            json={"items": [{"product_id": product["id"], "quantity": 1}]},
            headers=user_headers,
        )
        assert order.status_code == 202 and order.get_json()["status"] == "pending"
        health = web.get("/health/full")
        assert health.status_code == 503
        assert health.get_json()["components"]["redis"]["status"] == "down"
        assert "ReadOnlyError" in health.get_json()["components"]["redis"]["error"]

        probe.execute_command("REPLICAOF", "NO", "ONE")  # takes writes again, old entries and all
        time.sleep(0.1)
        assert web.get(path).get_json()["stock"] == 8
        assert not apps[0].extensions["cache_pending_bumps"]  # the owed bump is paid
        # Another process (which never saw the write fail) reads the new data, not the old entry.
        apps.append(
            create_app(
                app_env="testing", overrides={"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": url}
            )
        )
        assert apps[1].test_client().get(path).get_json()["stock"] == 8
        assert web.get("/health/full").get_json()["components"]["redis"]["status"] == "ok"
    finally:
        for made in apps:
            with made.app_context():
                db.engine.dispose()


def test_connection_errors_are_retried_for_a_bounded_while_timeouts_never():
    """A failover's switch is ridden through (connection errors, READONLY under Sentinel, no
    master named yet), for about REDIS_RETRY_SECONDS; a hung Redis is not waited on twice."""
    from project.redis_client import retry_policy

    web, background = retry_policy(1.0), retry_policy(15.0)
    assert 0 < web.get_retries() < background.get_retries()
    waited = sum(web._backoff.compute(n) for n in range(1, web.get_retries() + 1))
    assert 1.0 <= waited < 1.6
    for url in ("redis://127.0.0.1:1/0", "redis+sentinel://127.0.0.1:1/mymaster/0"):
        kwargs = connect(url, retry_seconds=15.0).connection_pool.connection_kwargs
        assert kwargs["retry"].get_retries() == background.get_retries()
        assert kwargs["retry"]._supported_errors == (redis.exceptions.ConnectionError,)
    # At least one immediate retry: a pooled connection Redis closed (a restart) is replaced.
    assert retry_policy(0).get_retries() == 1


def test_workers_and_the_scheduler_get_the_longer_retry(database_url):
    web = create_app(
        app_env="testing",
        overrides={"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    background = create_app(
        app_env="testing",
        overrides={
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "REDIS_BACKGROUND": True,
        },
    )
    retries = [
        made.extensions["redis"].connection_pool.connection_kwargs["retry"].get_retries()
        for made in (web, background)
    ]
    assert retries[0] < retries[1]

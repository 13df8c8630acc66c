"""Test harness.

With `TEST_DATABASE_URL` / `TEST_REDIS_URL` set (CI: the real PostgreSQL and Redis) the suite
runs against them; without, on in-memory SQLite and fakeredis, and the tests marked
`postgres` / `redis` skip with a reason.

Isolation: the schema is built once per session by the real migrations; after each test
every table is emptied (TRUNCATE on PostgreSQL) and Redis flushed. Real commits, so tests
with several connections, threads and workers see the same data as the API does.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading

import pytest

# A test run never reads a developer's `.env` (config.py reads it only in development).
os.environ.setdefault("APP_ENV", "testing")

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import text  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from project import create_app  # noqa: E402
from project.extensions import db, redis_client  # noqa: E402
from tests.helpers import MIGRATIONS, ROOT, STRONG_PASSWORD, login  # noqa: E402

ON_POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")
ON_REAL_REDIS = os.environ.get("TEST_REDIS_URL", "").startswith("redis")


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set TEST_DATABASE_URL (CI does)")
    skip_redis = pytest.mark.skip(reason="needs a real Redis: set TEST_REDIS_URL (CI does)")
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not ON_REAL_REDIS:
            item.add_marker(skip_redis)


def reset_schema() -> None:
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(directory=MIGRATIONS)


def empty_tables() -> None:
    db.session.remove()
    tables = [t.name for t in db.metadata.sorted_tables]
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE TABLE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """The test database, built once per session by the real migrations."""
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    app = create_app(app_env="testing", overrides={"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        reset_schema()
        db.engine.dispose()
    return url


@pytest.fixture
def app(request, database_url):
    """A fresh app per test (Flask-Limiter and the API spec are process-wide objects).

    `@pytest.mark.app_config(KEY=value, ...)` lays config overrides on top.
    """
    overrides = {"SQLALCHEMY_DATABASE_URI": database_url}
    for marker in reversed(list(request.node.iter_markers("app_config"))):
        overrides.update(marker.kwargs)
    app = create_app(app_env="testing", overrides=overrides)
    yield app
    with app.app_context():
        empty_tables()
        if redis_client.enabled and ON_REAL_REDIS:
            redis_client.client.flushdb()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def live_server(app):
    """The test app behind a real HTTP server (werkzeug, threaded) on a free loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


_serial = itertools.count(1)


@pytest.fixture
def make_user(app):
    """Create a user directly (no email, no API); returns a dict with its id and password."""
    from project.passwords import hash_password
    from project.users.models import User

    def make(role: str = "user", *, is_active: bool = True, is_verified: bool = True, **fields) -> dict:
        n = next(_serial)
        values = {
            "email": f"user{n}@example.com",
            "username": f"user{n}",
            "password": STRONG_PASSWORD,
        }
        values.update(fields)
        with app.app_context():
            user = User(
                email=values["email"],
                username=values["username"],
                password_hash=hash_password(values["password"]),
                role=role,
                is_active=is_active,
                is_verified=is_verified,
            )
            db.session.add(user)
            db.session.commit()
            return {**values, "id": user.id, "role": role}

    return make


@pytest.fixture
def auth_headers(app):
    """`auth_headers(user)`: headers with a fresh access token of a new session of `user`."""
    from project.auth.sessions import start_session
    from project.users.models import User

    def headers(user: dict) -> dict:
        with app.app_context():
            tokens = start_session(db.session.get(User, user["id"]), "pytest", "127.0.0.1")
            db.session.commit()
        return {"Authorization": f"Bearer {tokens['access_token']}"}

    return headers


@pytest.fixture
def make_product(app):
    """`make_product(**fields, deleted=False)`: a product written by the catalogue service (so
    the product cache is invalidated as on any write); returns it as the API shows it."""
    from decimal import Decimal

    from project.products import service
    from project.products.schemas import ProductSchema

    counter = itertools.count(1)

    def make(deleted: bool = False, **fields) -> dict:
        n = next(counter)
        data = {
            "sku": f"SKU-{n:04d}",
            "name": f"Product {n}",
            "description": "",
            "price": "9.99",
            "stock": 10,
        }
        data.update(fields)
        data["price"] = Decimal(str(data["price"]))
        with app.app_context():
            product = service.create_product(data)
            if deleted:
                service.delete_product(product["id"])
            return ProductSchema().dump(product)

    return make


@pytest.fixture
def log_in(client):
    """`log_in(user)` (a `make_user` dict) or `log_in(email_or_username, password)`: logs in
    through the API and returns the token pair (asserts a 200)."""

    def do(user_or_identifier: dict | str, password: str | None = None) -> dict:
        if isinstance(user_or_identifier, dict):
            user_or_identifier, password = user_or_identifier["email"], user_or_identifier["password"]
        assert password is not None
        return login(client, user_or_identifier, password)

    return do


@pytest.fixture
def admin(make_user):
    return make_user("admin")


@pytest.fixture
def user(make_user):
    return make_user("user")


@pytest.fixture
def admin_headers(admin, auth_headers):
    return auth_headers(admin)


@pytest.fixture
def user_headers(user, auth_headers):
    return auth_headers(user)


@pytest.fixture
def run_jobs(app):
    """Run every queued job now, as a worker would (`worker.py`), then return."""
    from project.jobs import QUEUE_NAMES
    from worker import run_worker

    def run(queues: tuple[str, ...] = QUEUE_NAMES) -> None:
        run_worker(app, list(queues), burst=True)

    return run


@pytest.fixture
def redis_down(app):
    """Every Redis command of this app fails as if the server were down (cache and queues)."""
    import redis

    pool = app.extensions["redis"].connection_pool
    original = pool.get_connection

    def refuse(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Error 111 connecting to redis. Connection refused.")

    pool.get_connection = refuse
    # A cache HIT's own connection (real Redis) is outside the pool: without it, HITs go
    # through the pool too.
    hot_line = app.extensions.get("redis_hot_line")
    app.extensions["redis_hot_line"] = None
    yield
    pool.get_connection = original
    app.extensions["redis_hot_line"] = hot_line


@pytest.fixture
def app_process(tmp_path):
    """`app_process("worker.py", "--scheduler", KEY="value")`: a long-running process of this
    app (worker, scheduler) on the test database and Redis, with settings from the keyword
    arguments; its output goes to `proc.log_path`. Stopped (SIGTERM, else SIGKILL) afterwards."""
    procs: list[subprocess.Popen] = []

    def start(*args: str, **settings) -> subprocess.Popen:
        env = {
            **os.environ,
            "APP_ENV": "development",
            "DATABASE_URL": os.environ["TEST_DATABASE_URL"],
            "REDIS_URL": os.environ["TEST_REDIS_URL"],
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "plain",
            **{key: str(value) for key, value in settings.items()},
        }
        log_path = tmp_path / f"process-{len(procs)}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        proc.log_path = log_path  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

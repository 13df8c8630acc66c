"""Migration 0005: existing rows brought to the normal form, or a clear stop on collisions."""

from __future__ import annotations

import os
import uuid

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from config import database_url
from project import create_app
from tests.helpers import MIGRATIONS

BEFORE = "0004_catalogue_search"
INSERT = text(
    "INSERT INTO users (email, username, password_hash, role, is_active, is_verified, created_at, updated_at)"
    " VALUES (:email, :username, 'x', 'user', true, true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def scratch_database(request, tmp_path):
    """An empty database of its own (the suite's schema is at head): SQLite, and PostgreSQL in CI."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migration.db'}"
        return
    if not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL (CI does)")
    base = database_url(os.environ["TEST_DATABASE_URL"])
    name = f"{make_url(base).database}_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def migrate(url: str, revision: str) -> None:
    app = create_app(app_env="testing", overrides={"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config(MIGRATIONS)
        command.upgrade(config, revision)


def rows(url: str, sql: str) -> list:
    engine = create_engine(url)
    with engine.begin() as conn:
        result = conn.execute(text(sql)).all()
    engine.dispose()
    return result


def insert(url: str, *users: tuple[str, str]) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for email, username in users:
            conn.execute(INSERT, {"email": email, "username": username})
    engine.dispose()


def test_the_migration_normalises_existing_rows(scratch_database):
    migrate(scratch_database, BEFORE)
    insert(scratch_database, ("ａnn@example.com", "Ann\n"), ("bob@example.com", "ＢＯＢ"))
    migrate(scratch_database, "head")
    found = rows(scratch_database, "SELECT email, username, email_key, username_key FROM users ORDER BY id")
    assert [tuple(row) for row in found] == [
        ("ann@example.com", "Ann", "ann@example.com", "ann"),
        ("bob@example.com", "BOB", "bob@example.com", "bob"),
    ]


def test_the_migration_stops_on_collisions_and_names_the_rows(scratch_database):
    migrate(scratch_database, BEFORE)
    insert(
        scratch_database,
        ("admin@example.com", "admin"),
        ("ａdmin@example.com", "someone"),  # same email once normalised
        ("other@example.com", "admin\n"),  # same username once normalised
    )
    with pytest.raises(RuntimeError) as stopped:
        migrate(scratch_database, "head")
    message = str(stopped.value)
    assert "users 1 and 2 share the email normal form 'admin@example.com'" in message
    assert "users 1 and 3 share the username normal form 'admin'" in message
    # Nothing changed: resolve the rows and run it again.
    assert rows(scratch_database, "SELECT email FROM users WHERE id = 2")[0][0] == "ａdmin@example.com"
    engine = create_engine(scratch_database)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM users WHERE id IN (2, 3)"))
    engine.dispose()
    migrate(scratch_database, "head")
    assert rows(scratch_database, "SELECT email_key, username_key FROM users") == [
        ("admin@example.com", "admin")
    ]

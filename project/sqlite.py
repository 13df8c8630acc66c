"""SQLite, the embedded default database (no `DATABASE_URL`): its folder, and the rules each
of its connections has to ask for.

The connect listener is on SQLAlchemy's `Engine` class, registered when this module is
imported (the app factory imports it), so every engine of the process gets it; it does
nothing on a PostgreSQL connection.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from project.database import register_sqlite_functions


def init_app(app: Flask) -> None:
    """The development database file lives under the instance folder: make sure it exists."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)


@event.listens_for(Engine, "connect")
def _sqlite_connection_rules(dbapi_connection, _record) -> None:
    """SQLite enforces foreign keys (and so ON DELETE CASCADE) only when asked; it also gets
    a Unicode-aware lower (project.database.register_sqlite_functions)."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        register_sqlite_functions(dbapi_connection)

"""Column types and helpers shared by the models."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, DateTime, Result
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on PostgreSQL and SQLite alike (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def _unicode_lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def register_sqlite_functions(dbapi_connection: sqlite3.Connection) -> None:
    """SQLite's built-in lower() folds ASCII only; `unicode_lower` folds the rest too, as
    PostgreSQL's lower() does (Ä/ä, É/é, Ж/ж), so both databases match the same rows."""
    dbapi_connection.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)


def contains(expression: ColumnElement[Any] | InstrumentedAttribute[Any], text: str) -> ColumnElement[bool]:
    """`expression` (already lower-cased) contains `text`, case-insensitively: a LIKE with
    its wildcards escaped, so `%` and `_` in the text match themselves."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return expression.like(f"%{escaped}%", escape="\\")


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (its result is a CursorResult; the typing says Result)."""
    return cast("CursorResult[Any]", result).rowcount

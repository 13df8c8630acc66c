"""Column types and helpers shared by the models."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, CursorResult, DateTime, Result
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator

from project.extensions import db


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


@contextmanager
def autocommit_connection() -> Iterator[Connection]:
    """A pooled connection in autocommit, for reads that must cost ONE round trip: no BEGIN
    before, no ROLLBACK when it goes back to the pool. (SQLAlchemy's
    `isolation_level="AUTOCOMMIT"` costs psycopg2 a round trip to set and one to reset; the
    driver's own `autocommit` flag is client-side.)"""
    with db.engine.connect() as connection:
        dbapi_connection = connection.connection.dbapi_connection
        assert dbapi_connection is not None  # a checked-out connection always has one
        dbapi_connection.autocommit = True
        try:
            yield connection
        finally:
            if not connection.invalidated:
                dbapi_connection.autocommit = False


# PostgreSQL's SQLSTATEs for "no such prepared statement" and "it exists already".
LOST_STATEMENT, DUPLICATE_STATEMENT = "26000", "42P05"


class _Held(threading.local):
    """This thread's connection for the prepared reads (see PreparedRead)."""

    engine: Any = None
    connection: Any = None  # a PoolProxiedConnection detached from its pool
    cursor: Any = None


_held = _Held()
# Connections a forked child found in its copy of _held. They are never used or closed in the
# child: closing one would end the parent's session (psycopg2 says goodbye on the socket).
_inherited: list[Any] = []


def _drop_held() -> None:
    connection, _held.engine, _held.connection, _held.cursor = _held.connection, None, None, None
    if connection is not None:
        with suppress(Exception):  # already broken: nothing to say goodbye on
            connection.close()


def _forget_after_fork() -> None:
    """In a forked child, the forking thread's connection is the parent's: keep it, unused.
    (The other threads' locals are not freed in the child, so theirs are not closed either.)"""
    if _held.connection is not None:
        _inherited.append(_held.connection)
    _held.engine = _held.connection = _held.cursor = None


os.register_at_fork(after_in_child=_forget_after_fork)


class PreparedRead:
    """A one-row read as a server-side prepared statement on PostgreSQL: ONE round trip on a
    connection this thread keeps (autocommit, no pre-ping), and no SQLAlchemy statement or
    pool machinery on the way. For the reads every request makes (the token check): against
    the ORM-free Core path it saves about 100 us of this process's CPU and 40 us of
    PostgreSQL's (no parse and plan per call) per request, and keeping the connection saves
    the pool's checkout and return (184 -> 135 us of CPU per read in process, medians of 4).

    Safe behind PgBouncer in transaction mode, where each autocommit statement may run on
    another server connection and server connections come and go (RECONNECT, restarts):
    - The statement is named by a hash of its SQL (`<name>_<sha1[:12]>`), so a statement of
      the same name prepared by another version of the code (one more column, a rolling
      deploy) never collides with ours, and every client of one pooler shares it safely.
    - A read sends `EXECUTE` first. Where the server connection lacks the statement, it
      sends `PREPARE ...; EXECUTE ...` as ONE query: one message, one implicit transaction,
      so both run on the same server connection. Where that one had it after all (another
      client prepared it there: 42P05), and the next `EXECUTE` misses again, the read goes
      out as a plain parametrised query: never an error for the pooler's shuffling.
    So a direct connection prepares once and then costs one round trip per read; behind a
    pooler, each server connection prepares once.

    `statement` is a Core select with named bind parameters; it is compiled once. The
    connection comes from the engine's pool, which then forgets it (`detach`: the pool opens
    another in its place when it needs one), and stays with the thread: one connection per
    thread that runs these reads (gunicorn's threads, the gRPC check threads), beside the
    pool's. A new engine (another app) replaces it, and so does a fork (the child connects
    anew). The row comes back as a dict keyed by the select's labels, its values through the
    columns' result processors as Core would give them. Errors are SQLAlchemy's
    (`DBAPIError`, `connection_invalidated` when the server ended the connection), so the
    error handlers apply as usual; after any error the connection is closed, and the next
    read connects anew.
    """

    def __init__(self, name: str, statement: Any, params: tuple[str, ...]) -> None:
        self.name = name
        self.statement = statement
        self.params = params
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, dialect: Any) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        plain = sql = str(compiled)
        for number, param in enumerate(self.params, 1):
            sql = sql.replace(f"%({param})s", f"${number}")
            plain = plain.replace(f"%({param})s", "%s")
        columns = list(self.statement.selected_columns)
        name = f"{self.name}_{hashlib.sha1(sql.encode()).hexdigest()[:12]}"
        prepare = f"PREPARE {name} AS {sql}"
        execute = f"EXECUTE {name} ({', '.join(['%s'] * len(self.params))})"
        processors = [column.type.result_processor(dialect, None) for column in columns]
        return _Compiled(name, prepare, execute, plain, [column.key for column in columns], processors)

    @staticmethod
    def _cursor(engine: Any) -> Any:
        """This thread's cursor on `engine`, connecting when it has none (or one of another
        engine)."""
        if _held.engine is engine:
            return _held.cursor
        _drop_held()
        dialect = engine.dialect
        try:
            connection = engine.raw_connection()
        except dialect.loaded_dbapi.Error as exc:  # cannot connect: wrapped as Core would
            raise DBAPIError.instance(
                None, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
            ) from exc
        connection.detach()
        connection.dbapi_connection.autocommit = True
        _held.connection, _held.cursor = connection, connection.cursor()
        _held.engine = engine
        return _held.cursor

    @staticmethod
    def _run(cursor: Any, compiled: _Compiled, args: tuple[Any, ...], error: type[Exception]) -> None:
        """Execute the read on whatever server connection the statement lands on (see above).
        Autocommit: a failed statement leaves no transaction to abort."""
        attempts = (
            compiled.execute,
            f"{compiled.prepare}; {compiled.execute}",
            compiled.execute,
        )
        for query in attempts:
            try:
                cursor.execute(query, args)
                return
            except error as exc:
                if getattr(exc, "pgcode", None) not in (LOST_STATEMENT, DUPLICATE_STATEMENT):
                    raise
        cursor.execute(compiled.plain, args)

    def first(self, values: dict[str, Any]) -> dict[str, Any] | None:
        engine = db.engine
        dialect = engine.dialect
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self._compile(dialect)
        args = tuple(values[param] for param in self.params)
        cursor = self._cursor(engine)
        try:
            self._run(cursor, compiled, args, dialect.loaded_dbapi.Error)
            row = cursor.fetchone()
        except dialect.loaded_dbapi.Error as exc:
            invalidated = dialect.is_disconnect(exc, _held.connection.dbapi_connection, cursor)
            _drop_held()
            raise DBAPIError.instance(
                compiled.execute,
                args,
                exc,
                dialect.loaded_dbapi.Error,
                hide_parameters=True,
                connection_invalidated=invalidated,
                dialect=dialect,
            ) from exc
        if row is None:
            return None
        return {
            key: (processor(value) if processor is not None else value)
            for key, processor, value in zip(compiled.keys, compiled.processors, row, strict=True)
        }


@dataclass(frozen=True)
class _Compiled:
    """A PreparedRead's SQL for one dialect: the statement's name, PREPARE, EXECUTE, the
    plain parametrised form, and how to read the row."""

    name: str
    prepare: str
    execute: str
    plain: str
    keys: list[str]
    processors: list[Any]


def _unicode_lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def register_sqlite_functions(dbapi_connection: sqlite3.Connection) -> None:
    """SQLite's built-in lower() folds ASCII only; `unicode_lower` folds the rest too, as
    PostgreSQL's lower() does (Ä/ä, É/é, Ж/ж), so both databases match the same rows."""
    dbapi_connection.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)


def contains(expression: ColumnElement[Any], text: str) -> ColumnElement[bool]:
    """`expression` (already lower-cased) contains `text`, case-insensitively: a LIKE with
    its wildcards escaped, so `%` and `_` in the text match themselves."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return expression.like(f"%{escaped}%", escape="\\")


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (its result is a CursorResult; the typing says Result)."""
    return cast("CursorResult[Any]", result).rowcount

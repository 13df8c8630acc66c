"""The token check's read: one row as a PostgreSQL prepared statement, on a connection each
thread keeps; on SQLite, a plain read through the request's session.

It owns its connection (one per thread, outside the pool; a new engine or a fork replaces
it), its fallback (SQLite) and its one retry (a connection the server ended). Callers give a
Core select and get its row as a dict, or None.
"""

from __future__ import annotations

import hashlib
import os
import threading
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError

from project.extensions import db

# PostgreSQL's SQLSTATEs for "no such prepared statement" and "it exists already".
LOST_STATEMENT, DUPLICATE_STATEMENT = "26000", "42P05"


class _ThreadConnection(threading.local):
    """This thread's connection for the prepared reads, and the engine it came from."""

    engine: Any = None
    connection: Any = None  # a PoolProxiedConnection detached from its pool
    cursor: Any = None


_this_thread = _ThreadConnection()
# Connections a forked child found in its copy of `_this_thread`. They are never used or
# closed in the child: closing one would end the parent's session (psycopg2 says goodbye on
# the socket).
_parents_connections: list[Any] = []


def _close_thread_connection() -> None:
    connection = _this_thread.connection
    _this_thread.engine = _this_thread.connection = _this_thread.cursor = None
    if connection is not None:
        with suppress(Exception):  # already broken: nothing to say goodbye on
            connection.close()


def _forget_after_fork() -> None:
    """In a forked child, the forking thread's connection is the parent's: keep it, unused.
    (The other threads' locals are not freed in the child, so theirs are not closed either.)"""
    if _this_thread.connection is not None:
        _parents_connections.append(_this_thread.connection)
    _this_thread.engine = _this_thread.connection = _this_thread.cursor = None


os.register_at_fork(after_in_child=_forget_after_fork)


class PreparedRead:
    """A one-row read as a server-side prepared statement on PostgreSQL: ONE round trip on a
    connection this thread keeps (autocommit, no pre-ping), and no SQLAlchemy statement or
    pool machinery on the way: no parse and plan per call on the server, no checkout and
    return per call here. For the read every request makes (the token check; the figures are
    in bench/README.md).

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
    columns' result processors as Core would give them.

    A connection the server ended (restart, failover, pg_terminate_backend) fails the read
    once and is replaced: the read is tried once more on a fresh connection. Other errors
    are SQLAlchemy's (`DBAPIError`), so the error handlers apply as usual; after any error
    the connection is closed, and the next read connects anew.

    On SQLite (in process: no round trip to save) the read goes through the request's
    session like any other query.
    """

    def __init__(self, name: str, statement: Any, params: tuple[str, ...]) -> None:
        self.name = name
        self.statement = statement
        self.params = params
        self._compiled: dict[str, _Compiled] = {}

    def first(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """The row for `values` (keyed by the select's labels), or None."""
        engine = db.engine
        if engine.dialect.name != "postgresql":
            row = db.session.execute(self.statement, values).first()
            return dict(row._mapping) if row is not None else None
        compiled = self._compiled.get(engine.dialect.name)
        if compiled is None:
            compiled = self._compiled[engine.dialect.name] = self._compile(engine.dialect)
        args = tuple(values[param] for param in self.params)
        try:
            return self._read(engine, compiled, args)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        return self._read(engine, compiled, args)  # once more, on a new connection

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

    def _read(self, engine: Any, compiled: _Compiled, args: tuple[Any, ...]) -> dict[str, Any] | None:
        """One attempt on this thread's connection; a driver error comes out as Core's
        `DBAPIError` (`connection_invalidated` when the server ended the connection)."""
        dialect = engine.dialect
        cursor = self._cursor(engine)
        try:
            self._run(cursor, compiled, args, dialect.loaded_dbapi.Error)
            row = cursor.fetchone()
        except dialect.loaded_dbapi.Error as exc:
            invalidated = dialect.is_disconnect(exc, _this_thread.connection.dbapi_connection, cursor)
            _close_thread_connection()
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

    @staticmethod
    def _cursor(engine: Any) -> Any:
        """This thread's cursor on `engine`, connecting when it has none (or one of another
        engine)."""
        if _this_thread.engine is engine:
            return _this_thread.cursor
        _close_thread_connection()
        dialect = engine.dialect
        try:
            connection = engine.raw_connection()
        except dialect.loaded_dbapi.Error as exc:  # cannot connect: wrapped as Core would
            raise DBAPIError.instance(
                None, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
            ) from exc
        connection.detach()
        connection.dbapi_connection.autocommit = True
        _this_thread.connection, _this_thread.cursor = connection, connection.cursor()
        _this_thread.engine = engine
        return _this_thread.cursor

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

"""project/prepared_read.py: the token check's prepared read on PostgreSQL (its statement,
the connection each thread keeps, forks), through the requests that make it."""

import pytest


def _prepared_here() -> list[str]:
    """Names of the statements prepared on this thread's token-check connection."""
    from project import prepared_read

    prepared_read._this_thread.cursor.execute("SELECT name FROM pg_prepared_statements")
    return [name for (name,) in prepared_read._this_thread.cursor.fetchall()]


@pytest.mark.postgres
def test_the_token_check_survives_its_prepared_statement_being_dropped(app, client, user_headers):
    """The token check is a prepared statement, prepared once per connection: when the server
    forgets it (DEALLOCATE, a pooler in between), it is prepared again, no error."""
    from project import prepared_read
    from project.auth.sessions import _LIVE_SESSION_USER_READ

    assert client.get("/api/v1/users/me", headers=user_headers).status_code == 200
    # The test client serves in this thread: the connection the request used is this thread's.
    name = _LIVE_SESSION_USER_READ._compiled["postgresql"].name
    assert _prepared_here() == [name]
    prepared_read._this_thread.cursor.execute("DEALLOCATE ALL")
    for _ in range(2):
        assert client.get("/api/v1/users/me", headers=user_headers).status_code == 200
    assert _prepared_here() == [name]


@pytest.mark.postgres
def test_a_skewed_statement_of_the_same_name_does_not_break_the_token_check(app, client, user_headers):
    """Another version of the code (one more column, a rolling deploy) left its statement on
    the server connection: ours is named by its SQL's hash, so the two never collide."""
    from project import prepared_read

    assert client.get("/api/v1/users/me", headers=user_headers).status_code == 200
    prepared_read._this_thread.cursor.execute("DEALLOCATE ALL")
    prepared_read._this_thread.cursor.execute("PREPARE session_and_user AS SELECT 1, 2, $1::text, $2::int")
    answer = client.get("/api/v1/users/me", headers=user_headers)
    assert answer.status_code == 200 and answer.get_json()["email"], answer.get_json()
    assert "session_and_user" in _prepared_here() and len(_prepared_here()) == 2


@pytest.mark.postgres
def test_the_token_check_reads_when_its_statement_keeps_moving(app, client, user_headers, monkeypatch):
    """Behind PgBouncer in transaction mode, EXECUTE may land on a server connection without
    the statement and PREPARE on one that has it: the read still answers (plainly)."""
    from project.auth.sessions import _LIVE_SESSION_USER_READ
    from project.prepared_read import DUPLICATE_STATEMENT, LOST_STATEMENT

    assert client.get("/api/v1/users/me", headers=user_headers).status_code == 200
    compiled = _LIVE_SESSION_USER_READ._compiled["postgresql"]
    sent = []

    import psycopg2

    class Shuffled(psycopg2.Error):
        def __init__(self, code: str) -> None:
            super().__init__(code)
            self.code = code

        @property
        def pgcode(self):  # read-only on psycopg2's own errors
            return self.code

    class PoolerCursor:
        """What a pooler's shuffling looks like to the client: the statement is never where
        the query lands."""

        def __init__(self, real):
            self.real = real

        def execute(self, query, args=()):
            sent.append(query)
            if query == compiled.execute:
                raise Shuffled(LOST_STATEMENT)
            if query.startswith("PREPARE"):
                raise Shuffled(DUPLICATE_STATEMENT)
            return self.real.execute(query, args)

        def fetchone(self):
            return self.real.fetchone()

    real_cursor = _LIVE_SESSION_USER_READ._cursor
    monkeypatch.setattr(
        type(_LIVE_SESSION_USER_READ), "_cursor", staticmethod(lambda e: PoolerCursor(real_cursor(e)))
    )
    answer = client.get("/api/v1/users/me", headers=user_headers)
    assert answer.status_code == 200, answer.get_json()
    assert sent[-1] == compiled.plain and len(sent) == 4


KEPT_APP_NAME = "pytest-kept-connection"


def _backends(app, name: str) -> int:
    import psycopg2

    admin = psycopg2.connect(app.config["SQLALCHEMY_DATABASE_URI"].replace("+psycopg2", ""))
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,))
            return cursor.fetchone()[0]
    finally:
        admin.close()


@pytest.mark.postgres
@pytest.mark.app_config(SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"application_name": KEPT_APP_NAME}})
def test_the_token_check_keeps_one_connection_per_thread(app, client, user_headers):
    """The token check's connection stays with the thread (no checkout and return per request),
    beside the pool's; a new engine replaces it, and the old one is closed, not left open."""
    from sqlalchemy import create_engine

    from project import prepared_read

    assert client.get("/api/v1/users/me", headers=user_headers).status_code == 200
    kept = prepared_read._this_thread.connection
    kept_dbapi = kept.dbapi_connection
    before = _backends(app, KEPT_APP_NAME)
    for _ in range(5):
        assert client.get("/api/v1/users/me", headers=user_headers).status_code == 200
    assert prepared_read._this_thread.connection is kept
    assert _backends(app, KEPT_APP_NAME) == before

    # Another engine (another app) in this thread: its own connection, and the old one closed.
    other = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    try:
        prepared_read.PreparedRead._cursor(other)
        assert (
            prepared_read._this_thread.connection is not kept and prepared_read._this_thread.engine is other
        )
        assert kept_dbapi.closed
    finally:
        prepared_read._close_thread_connection()
        other.dispose()
    assert client.get("/api/v1/users/me", headers=user_headers).status_code == 200


@pytest.mark.postgres
def test_a_forked_child_connects_anew_and_leaves_the_parents_connections_alone(app, user):
    """A child forked after token checks (an RQ work horse, say) must neither use nor close the
    parent's connections, its own thread's or another's: psycopg2 says goodbye on close, which
    would end the parent's session. The child connects anew; the parent's connections still
    answer afterwards."""
    import os
    import threading

    from project import prepared_read
    from project.auth.sessions import _LIVE_SESSION_USER_READ

    values = {"sid": "no-such-session", "user_id": user["id"]}
    read = _LIVE_SESSION_USER_READ.first
    held, resume, other = threading.Event(), threading.Event(), {}

    def another_thread() -> None:
        with app.app_context():
            assert read(values) is None
            kept = prepared_read._this_thread.connection
            held.set()
            resume.wait(10)
            other["answered"] = read(values) is None and prepared_read._this_thread.connection is kept

    thread = threading.Thread(target=another_thread)
    thread.start()
    assert held.wait(10)
    try:
        with app.app_context():
            assert read(values) is None
            parent = prepared_read._this_thread.connection
            pid = os.fork()
            if pid == 0:  # the child: exit code 0 only if it read on a connection of its own
                code = 1
                try:
                    missing = read(values) is None
                    code = 0 if missing and prepared_read._this_thread.connection is not parent else 2
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            assert read(values) is None
            assert prepared_read._this_thread.connection is parent and not parent.dbapi_connection.closed
    finally:
        resume.set()
        thread.join(10)
    assert other == {"answered": True}

"""PgBouncer in transaction mode in front of PostgreSQL: mixed traffic (reads, writes, orders,
gRPC token checks) while PgBouncer drops its server connections every second (RECONNECT), and
with a skewed statement (another version's `session_and_user`, one more column) left on the
server connections. 0 errors either way (issue #24). Migrations run through PgBouncer too."""

from __future__ import annotations

import threading

import psycopg2

from tests.topology.harness import psql
from tests.topology.hosts_traffic import Stack, Traffic

SKEWED = (
    "PREPARE session_and_user AS SELECT u.id, u.email, u.username, u.role, u.is_active, "
    "u.is_verified, u.created_at, u.password_hash, s.revoked_at, 1 AS added_in_the_next_version "
    "FROM users u JOIN auth_sessions s ON s.user_id = u.id WHERE s.id = $1 AND u.id = $2"
)


def test_pgbouncer_transaction_mode_with_server_connection_churn_and_statement_skew(topology):
    pg = topology.postgres()
    bouncer = topology.pgbouncer(pg.port)
    redis = topology.redis()
    url = f"postgresql://postgres@127.0.0.1:{bouncer.port}/app"
    stack = Stack.start(topology, url, f"redis://127.0.0.1:{redis.port}/0")

    stop = threading.Event()
    reconnects = []

    def churn() -> None:
        while not stop.wait(1.0):
            reconnects.append(psql(bouncer.port, "RECONNECT", database="pgbouncer"))

    churner = threading.Thread(target=churn, daemon=True)
    churner.start()
    try:
        traffic = Traffic(stack).run(2000)
    finally:
        stop.set()
        churner.join(timeout=30)
    print(
        f"churn: {traffic.sent} sent, {len(reconnects)} RECONNECTs, "
        f"HTTP {dict(traffic.statuses)}, gRPC {dict(traffic.grpc_answers)}"
    )
    assert len(reconnects) >= 2
    assert traffic.sent >= 2000
    assert set(traffic.statuses) <= {200, 202}, (traffic.statuses, traffic.failures)
    assert set(traffic.grpc_answers) == {"valid"}, traffic.grpc_answers
    assert stack.wait_orders_settled(traffic.orders) == {"reserved": len(traffic.orders)}

    # Another version's statement of the same name on every server connection: open enough
    # transactions at once that each holds a server connection of its own, prepare it in each.
    holders = [psycopg2.connect(url) for _ in range(20)]
    try:
        for connection in holders:
            connection.cursor().execute(SKEWED)
        for connection in holders:
            connection.commit()
    finally:
        for connection in holders:
            connection.close()
    skewed = Traffic(stack).run(400)
    print(f"skew: HTTP {dict(skewed.statuses)}, gRPC {dict(skewed.grpc_answers)}")
    assert set(skewed.statuses) <= {200, 202}, (skewed.statuses, skewed.failures)
    assert set(skewed.grpc_answers) == {"valid"}, skewed.grpc_answers

"""PostgreSQL failover under traffic: a streaming standby (`pg_basebackup -R`) promoted after
the primary stops, the stack on a libpq multi-host DATABASE_URL with
`target_session_attrs=read-write`: 503s in the error shape during the switch, then 200s with
no restart, and no order lost or left pending (issue #24)."""

from __future__ import annotations

import signal
import subprocess
import time

import requests

from tests.helpers import free_port, wait_for
from tests.topology.harness import postgres_bin, psql
from tests.topology.hosts_traffic import TIMEOUT, Stack, Traffic


def test_standby_promoted_under_traffic_with_a_multi_host_url(topology):
    primary = topology.postgres(name="primary")
    standby_data = topology.postgres_dir("standby") / "db"
    backup = subprocess.run(
        [postgres_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"]
        + ["-D", str(standby_data), "-R", "-X", "stream"],
        capture_output=True,
        text=True,
        user="postgres",
        timeout=120,
    )
    assert backup.returncode == 0, backup.stderr
    standby = topology.postgres(name="standby", port=free_port(), data=standby_data)
    assert psql(standby.port, "SELECT pg_is_in_recovery()") == "t"
    redis = topology.redis()
    hosts = f"127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
    url = f"postgresql://postgres@{hosts}/app?target_session_attrs=read-write&connect_timeout=2"
    stack = Stack.start(topology, url, f"redis://127.0.0.1:{redis.port}/0")

    traffic = Traffic(stack).start()
    time.sleep(3)
    # A fast shutdown: the primary sends the standby all its WAL first (no committed order lost
    # to asynchronous replication), then every connection to it is gone.
    primary.signal(signal.SIGINT)
    primary.proc.wait(timeout=30)
    time.sleep(2)
    assert psql(standby.port, "SELECT pg_promote()") == "t"
    wait_for(lambda: traffic.statuses[200] and _serves(stack), timeout=60, what="200s after the promotion")
    time.sleep(4)
    traffic.stop()
    print(f"pg failover: HTTP {dict(traffic.statuses)}, gRPC {dict(traffic.grpc_answers)}")

    assert traffic.statuses[500] == 0, traffic.failures
    assert set(traffic.statuses) <= {200, 202, 503}, (traffic.statuses, traffic.failures)
    assert traffic.statuses[503] > 0, traffic.statuses  # the switch was seen, as 503s (shape checked)
    assert not any(verdict.startswith("INVALID") for verdict in traffic.grpc_answers), traffic.grpc_answers
    assert set(traffic.grpc_answers) <= {"valid", "UNAVAILABLE"}, traffic.grpc_answers
    assert not traffic.stale_reads, traffic.stale_reads
    assert stack.wait_orders_settled(traffic.orders) == {"reserved": len(traffic.orders)}
    # No restart: every process still the one started before the switch.
    assert all(service.alive() for service in (*stack.webs, stack.worker, stack.scheduler))


def _serves(stack: Stack) -> bool:
    """Both instances answer an authenticated read with 200 again."""
    return all(
        requests.get(f"{stack.url(n)}/users/me", headers=stack.headers, timeout=TIMEOUT).status_code == 200
        for n in (0, 1)
    )

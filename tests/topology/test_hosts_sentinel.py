"""Redis Sentinel (1 master, 1 replica, 3 sentinels) under mixed traffic against two gunicorn
instances, a worker, the scheduler and the gRPC server: a planned failover, then the new
master SIGKILLed. No 500, no order lost or left pending, no stale read after a 2xx write,
and the worker and scheduler still running (issue #24)."""

from __future__ import annotations

import subprocess
import time

from tests.helpers import wait_for
from tests.topology.harness import ensure_installed
from tests.topology.hosts_traffic import Stack, Traffic

SERVICE = "mymaster"


def sentinel_command(port: int, *args: str) -> str:
    result = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10)
    return result.stdout.strip()


def master_port(sentinel_port: int) -> int:
    answer = sentinel_command(sentinel_port, "SENTINEL", "get-master-addr-by-name", SERVICE).split()
    return int(answer[1])


def test_sentinel_failovers_under_mixed_traffic(topology):
    ensure_installed("redis-sentinel", "redis-sentinel")
    first = topology.redis(name="redis-a")
    second = topology.redis("--replicaof", "127.0.0.1", str(first.port), name="redis-b")
    nodes = {first.port: first, second.port: second}
    sentinels = [topology.sentinel(first.port, service=SERVICE, name=f"sentinel{n}") for n in range(3)]
    wait_for(
        lambda: "master_link_status:up" in sentinel_command(second.port, "INFO", "replication"),
        timeout=30,
        what="the replica to sync",
    )
    hosts = ",".join(f"127.0.0.1:{s.port}" for s in sentinels)
    stack = Stack.start(topology, database_url(topology), f"redis+sentinel://{hosts}/{SERVICE}/0")

    traffic = Traffic(stack).start()
    time.sleep(3)
    # 1. A planned failover: the master is demoted (READONLY), the replica promoted.
    assert sentinel_command(sentinels[0].port, "SENTINEL", "FAILOVER", SERVICE) == "OK"
    wait_for(lambda: master_port(sentinels[0].port) == second.port, timeout=30, what="the planned failover")
    time.sleep(5)
    # 2. The new master SIGKILLed, as a lost host: the old one is promoted back.
    nodes[second.port].kill()
    wait_for(
        lambda: master_port(sentinels[0].port) == first.port, timeout=60, what="the failover after a kill"
    )
    time.sleep(5)
    traffic.stop()
    print(f"sentinel: {traffic.sent} sent, HTTP {dict(traffic.statuses)}, gRPC {dict(traffic.grpc_answers)}")

    assert traffic.statuses[500] == 0, traffic.failures
    assert not traffic.stale_reads, traffic.stale_reads[:10]
    assert "timeout" not in traffic.statuses, traffic.failures
    assert not any(verdict.startswith("INVALID") for verdict in traffic.grpc_answers), traffic.grpc_answers
    assert traffic.grpc_answers["valid"] > 0 and traffic.statuses[200] > 0, (
        traffic.statuses,
        traffic.grpc_answers,
    )
    assert len(traffic.orders) > 10, traffic.statuses
    statuses = stack.wait_orders_settled(traffic.orders)
    assert statuses == {"reserved": len(traffic.orders)}, statuses

    assert stack.worker is not None and stack.worker.alive(), stack.worker.output()[-3000:]
    assert stack.scheduler is not None and stack.scheduler.alive(), stack.scheduler.output()[-3000:]
    health = wait_for(
        lambda: (h := stack.health())["status"] == "ok" and h,
        timeout=60,
        what="/health/full to say ok again",
    )
    assert health["components"]["workers"]["count"] >= 1, health
    assert health["components"]["scheduler"]["alive"], health


def database_url(topology) -> str:
    pg = topology.postgres()
    return f"postgresql://postgres@127.0.0.1:{pg.port}/app"

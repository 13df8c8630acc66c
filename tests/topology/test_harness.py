"""The harness itself: a private PostgreSQL and Redis, migrations, gunicorn as shipped."""

from __future__ import annotations

import requests

from tests.topology.harness import PRODUCTION_ENV


def test_production_stack_on_private_ports_serves_and_stops_by_pid(topology):
    pg = topology.postgres()
    redis = topology.redis()
    env = {
        **PRODUCTION_ENV,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg.port}/app",
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
    }
    topology.migrate(env)
    web = topology.gunicorn(env)
    answer = requests.get(f"http://127.0.0.1:{web.port}/health/full", timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["components"]["database"]["status"] == "ok"
    assert answer.json()["components"]["redis"]["status"] == "ok"

    topology.close()
    assert not any(service.alive() for service in (pg, redis, web))

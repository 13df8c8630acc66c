"""Health endpoints, up and with a dependency unreachable."""

import pytest

UNREACHABLE_DB = "postgresql://nobody@127.0.0.1:1/none"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"

COMPONENTS = {"database", "redis", "queue", "workers", "scheduler"}


def test_liveness_touches_nothing(make_app):
    client = make_app(SQLALCHEMY_DATABASE_URI=UNREACHABLE_DB, REDIS_URL=UNREACHABLE_REDIS).test_client()
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/health/db", "/health/cache"])
def test_dependency_up(client, path):
    response = client.get(path)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert isinstance(body["latency_ms"], float) and body["latency_ms"] >= 0


def test_full_health_up(client):
    response = client.get("/health/full")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body["components"]) == COMPONENTS
    components = body["components"]
    assert components["database"]["status"] == "ok"
    assert components["redis"]["status"] == "ok"
    assert components["queue"] == {"status": "ok", "depth": {"email": 0, "stock": 0, "sync": 0, "cleanup": 0}}
    # Nothing runs a worker or a scheduler in this test: reported, but the API still serves.
    assert components["workers"] == {"status": "down", "count": 0}
    assert components["scheduler"]["alive"] is False
    assert body["status"] == "degraded"


def test_full_health_counts_queued_jobs(app, client):
    from project.jobs import enqueue

    with app.app_context():
        enqueue("email", print, "queued")
        enqueue("email", print, "queued")
    depth = client.get("/health/full").get_json()["components"]["queue"]["depth"]
    assert depth["email"] == 2 and depth["stock"] == 0


def test_full_health_sees_a_beating_worker_and_scheduler(app, client):
    from project.extensions import redis_client
    from project.jobs import QUEUE_NAMES, get_queue
    from project.schedule import AppScheduler
    from worker import AppWorker

    AppWorker.flask_app = app
    with app.app_context():
        worker = AppWorker(
            [get_queue(name) for name in QUEUE_NAMES], connection=redis_client.client, name="host-a:1:abc"
        )
        worker.register_birth()
        scheduler = AppScheduler(connection=redis_client.client, interval=5, app=app)
        scheduler.register_birth()
    components = client.get("/health/full").get_json()["components"]
    assert components["workers"] == {"status": "ok", "count": 1}
    assert components["scheduler"]["status"] == "ok" and components["scheduler"]["alive"] is True
    with app.app_context():
        worker.register_death()
        scheduler.register_death()
    components = client.get("/health/full").get_json()["components"]
    assert components["workers"] == {"status": "down", "count": 0}
    assert components["scheduler"]["alive"] is False


def test_a_worker_whose_heartbeat_expired_is_not_counted(app, client):
    """The heartbeat key's TTL is the liveness window: no key, not live (whatever rq:workers says)."""
    from rq import Worker

    from project.extensions import redis_client
    from project.jobs import QUEUE_NAMES, get_queue
    from project.ops import heartbeats

    with app.app_context():
        connection = redis_client.client
        Worker(
            [get_queue(name) for name in QUEUE_NAMES], connection=connection, name="host-b:2:dead"
        ).register_birth()  # RQ's set only
        heartbeats.beat(connection, "host-c:3:live", ttl=90)
        heartbeats.beat(connection, "host-d:4:gone", ttl=90)
        connection.delete(heartbeats.KEY_PREFIX + "host-d:4:gone")  # what the TTL does
    assert client.get("/health/full").get_json()["components"]["workers"] == {"status": "ok", "count": 1}
    with app.app_context():  # the expired name was dropped from the set
        assert connection.smembers(heartbeats.NAMES_KEY) == {b"host-c:3:live"}


def test_database_down(make_app):
    client = make_app(SQLALCHEMY_DATABASE_URI=UNREACHABLE_DB).test_client()
    response = client.get("/health/db")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "down"
    assert "database unreachable" in body["error"]
    assert "nobody" not in body["error"]  # no connection string in the answer

    full = client.get("/health/full")
    assert full.status_code == 503
    assert full.get_json()["status"] == "down"
    assert full.get_json()["components"]["database"]["status"] == "down"
    assert full.get_json()["components"]["redis"]["status"] == "ok"
    assert client.get("/health").status_code == 200


def test_redis_down(make_app):
    client = make_app(REDIS_URL=UNREACHABLE_REDIS).test_client()
    response = client.get("/health/cache")
    assert response.status_code == 503
    assert response.get_json()["status"] == "down"
    assert "redis unreachable" in response.get_json()["error"]

    full = client.get("/health/full")
    assert full.status_code == 503
    components = full.get_json()["components"]
    assert components["redis"]["status"] == "down"
    assert components["database"]["status"] == "ok"
    assert {components[name]["status"] for name in ("queue", "workers", "scheduler")} == {"down"}
    assert client.get("/health").status_code == 200
    assert client.get("/health/db").status_code == 200
    # Metrics still answer without the queue depth.
    assert client.get("/metrics").status_code == 200


def test_embedded_mode_says_disabled_not_down(make_app):
    client = make_app(REDIS_URL=None).test_client()
    assert client.get("/health/cache").get_json()["backend"] == "in-process"
    assert client.get("/health/cache").status_code == 200
    response = client.get("/health/full")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    for name in ("redis", "queue", "workers", "scheduler"):
        assert body["components"][name]["status"] == "disabled"
        assert "REDIS_URL" in body["components"][name]["detail"]


@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATE_LIMIT_DEFAULT="2/minute", RATELIMIT_DEFAULT="2/minute")
def test_health_and_metrics_are_not_rate_limited(client):
    for _ in range(5):
        assert client.get("/health").status_code == 200
        assert client.get("/health/db").status_code == 200
        assert client.get("/metrics").status_code == 200


@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_DEFAULT="2/minute")
def test_other_routes_are_rate_limited(client):
    """The control for the test above: the default limit is live on everything else."""
    codes = [client.get("/openapi.json").status_code for _ in range(4)]
    assert 429 in codes, codes

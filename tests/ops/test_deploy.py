"""Deployment files: the compose file's structure, and every service command running here.

There is no Docker engine on this machine, so the compose file is checked as data, and the
commands its services run are started as plain processes against the real PostgreSQL and Redis.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import requests
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from project.rpc.generated import auth_pb2, auth_pb2_grpc
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# API.md "Processes": the command of each role.
COMMANDS = {
    "api": ["gunicorn", "wsgi:app", "-c", "gunicorn.conf.py"],
    "worker": ["python", "worker.py"],
    "scheduler": ["python", "worker.py", "--scheduler"],
    "grpc": ["python", "grpc_server.py"],
    "migrate": ["flask", "--app", "wsgi", "db", "upgrade"],
}
TEST_JWT_SECRET = "jwt-secret-for-the-process-test-0123456789"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_services_and_commands(compose):
    services = compose["services"]
    assert set(services) == {"api", "worker", "scheduler", "grpc", "migrate", "postgres", "redis"}
    for name, command in COMMANDS.items():
        assert services[name]["command"] == command, name


def test_compose_order_and_health_checks(compose):
    services = compose["services"]
    for name in ("api", "worker", "scheduler", "grpc"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert services[name]["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        env = services[name]["environment"]
        assert env["APP_ENV"] == "production"
        assert env["DATABASE_URL"].startswith("postgresql://") and env["REDIS_URL"].startswith("redis://")
        assert "SECRET_KEY" in env and "JWT_SECRET_KEY" in env
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "ping" in services["redis"]["healthcheck"]["test"]
    assert services["api"]["ports"] == ["8000:8000"] and services["grpc"]["ports"] == ["50051:50051"]


def test_dockerfile_is_multi_stage_non_root_with_healthcheck():
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2
    assert "COPY --from=build" in text
    assert "\nUSER app" in text
    assert "\nHEALTHCHECK " in text
    assert 'CMD ["gunicorn", "wsgi:app", "-c", "gunicorn.conf.py"]' in text


def test_ci_workflow_runs_lint_and_tests_with_services():
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    job = workflow["jobs"]["test"]
    assert {"postgres", "redis"} <= set(job["services"])
    assert job["env"]["TEST_DATABASE_URL"].startswith("postgresql://")
    assert job["env"]["TEST_REDIS_URL"].startswith("redis://")
    runs = [step.get("run") for step in job["steps"]]
    assert runs.index("make lint") < runs.index("make test")


def wait_for(predicate, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.app_config(JWT_SECRET_KEY=TEST_JWT_SECRET)
def test_every_service_command_runs_and_stops_cleanly(app, user, auth_headers, tmp_path):
    http_port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "APP_ENV": "production",
        "SECRET_KEY": "secret-for-the-process-test-0123456789",
        "JWT_SECRET_KEY": TEST_JWT_SECRET,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "LOG_FORMAT": "json",
        "GRPC_PORT": str(grpc_port),
        "GUNICORN_BIND": f"127.0.0.1:{http_port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    commands = {name: [str(BIN / cmd[0]), *cmd[1:]] for name, cmd in COMMANDS.items() if name != "migrate"}
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in commands}  # noqa: SIM115
    procs = {
        name: subprocess.Popen(command, cwd=ROOT, env=env, stdout=logs[name], stderr=subprocess.STDOUT)
        for name, command in commands.items()
    }
    base = f"http://127.0.0.1:{http_port}"
    try:
        wait_for(lambda: requests.get(f"{base}/health", timeout=2).json() == {"status": "ok"}, what="api")

        def full_health():
            body = requests.get(f"{base}/health/full", timeout=5).json()
            components = body["components"]
            ready = components["workers"]["count"] >= 1 and components["scheduler"]["alive"]
            return body if ready else None

        body = wait_for(full_health, what="worker and scheduler in /health/full")
        assert body["status"] == "ok"
        assert body["components"]["database"]["status"] == "ok"
        assert body["components"]["redis"]["status"] == "ok"
        # The scheduler registered the periodic jobs.
        assert body["components"]["scheduler"]["scheduled_jobs"] >= 4

        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        grpc.channel_ready_future(channel).result(timeout=60)
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        token = auth_headers(user)["Authorization"].split()[1]
        reply = auth_pb2_grpc.AuthServiceStub(channel).ValidateToken(
            auth_pb2.ValidateTokenRequest(token=token), timeout=5
        )
        assert reply.valid and reply.user_id == user["id"]
        channel.close()

        # Multiprocess metrics: requests answered by either worker are counted.
        for _ in range(6):
            requests.get(f"{base}/health", timeout=5)
        metrics = requests.get(f"{base}/metrics", timeout=5).text
        line = next(
            row
            for row in metrics.splitlines()
            if row.startswith("http_requests_total{") and 'endpoint="/health"' in row
        )
        assert float(line.rsplit(" ", 1)[1]) >= 7
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = {}
        for name, proc in procs.items():
            try:
                codes[name] = proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[name] = "killed"
        for handle in logs.values():
            handle.close()
    output = {name: (tmp_path / f"{name}.log").read_text(errors="replace")[-2000:] for name in procs}
    assert codes == dict.fromkeys(procs, 0), output


def test_periodic_jobs_register_with_rq_scheduler(app):
    """rq validates job ids (letters, digits, '_' and '-'): `python worker.py --scheduler` relies on it."""
    from rq_scheduler import Scheduler

    from project.extensions import redis_client
    from project.schedule import PERIODIC_JOBS, register_periodic_jobs

    with app.app_context():
        scheduler = Scheduler(connection=redis_client.client)
        ids = register_periodic_jobs(app, scheduler)
        register_periodic_jobs(app, scheduler)  # a restart replaces, never duplicates
        assert sorted(job.id for job in scheduler.get_jobs()) == sorted(ids)
    assert len(ids) == len(PERIODIC_JOBS)


def test_registration_removes_periodic_jobs_no_longer_defined(app):
    """A periodic job dropped from schedule.py must stop firing; other scheduled jobs stay."""
    from datetime import UTC, datetime

    from rq_scheduler import Scheduler

    from project.extensions import redis_client
    from project.schedule import PERIODIC_JOBS, register_periodic_jobs

    with app.app_context():
        scheduler = Scheduler(connection=redis_client.client)
        for job_id in ("periodic-retired-job", "someone-elses-job"):
            scheduler.schedule(
                scheduled_time=datetime.now(UTC),
                func="project.users.jobs.cleanup_unverified_users",
                interval=60,
                id=job_id,
                queue_name="cleanup",
            )
        register_periodic_jobs(app, scheduler)
        ids = sorted(job.id for job in scheduler.get_jobs())
    assert ids == sorted([*(job.id for job in PERIODIC_JOBS), "someone-elses-job"])


def test_the_scheduler_restores_periodic_jobs_lost_with_redis(app):
    """A Redis restart without persistence empties the schedule: the next pass re-registers it."""
    from project.extensions import redis_client
    from project.schedule import PERIODIC_JOBS, AppScheduler, register_periodic_jobs

    with app.app_context():
        scheduler = AppScheduler(connection=redis_client.client, interval=5, app=app)
        register_periodic_jobs(app, scheduler)
        redis_client.client.flushdb()
        assert list(scheduler.get_jobs()) == []
        scheduler.enqueue_jobs()
        assert sorted(job.id for job in scheduler.get_jobs()) == sorted(job.id for job in PERIODIC_JOBS)
        scheduler.enqueue_jobs()  # nothing missing: nothing added twice
        assert len(list(scheduler.get_jobs())) == len(PERIODIC_JOBS)


def test_the_scheduler_process_outlives_a_redis_outage(app, monkeypatch):
    """`python worker.py --scheduler` retries with a fresh scheduler when Redis drops."""
    import redis

    import worker

    runs = []

    def run(self, burst=False):
        runs.append(self.key)
        if len(runs) == 1:
            raise redis.exceptions.ConnectionError("Connection refused.")

    monkeypatch.setattr(worker.AppScheduler, "run", run)
    monkeypatch.setattr(worker.time, "sleep", lambda seconds: None)
    worker.run_scheduler(app, interval=1)
    assert len(runs) == 2 and runs[0] != runs[1]

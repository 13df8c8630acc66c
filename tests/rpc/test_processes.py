"""`python grpc_server.py` as it runs in production: GRPC_WORKERS processes on one port.

A real parent process with its forked children, against the real PostgreSQL (every process
reads the same sessions) and called by a real client on fresh connections (the kernel spreads
connections, not calls, over the children).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from config import CONFIG_EXIT_STATUS
from grpc_server import GRACE_SECONDS, SERVICE_NAME
from project.auth.sessions import revoke_sessions
from project.extensions import db
from project.rpc.generated import auth_pb2, auth_pb2_grpc
from tests.helpers import free_port, metric_value, wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.app_config(JWT_SECRET_KEY="jwt-secret-for-the-grpc-processes-0123"),
]

ROOT = Path(__file__).resolve().parents[2]
CALLS = "grpc_server_handled_total"
VALIDATE = {"grpc_method": "/auth.AuthService/ValidateToken", "grpc_code": "OK"}


class Server:
    """A started `python grpc_server.py` and the ports it serves."""

    def __init__(self, app, tmp_path: Path, workers: int, port: int | None = None):
        self.port, self.metrics_port = port or free_port(), free_port()
        self.metrics_dir = tmp_path / "metrics"
        env = {
            **os.environ,
            "APP_ENV": "production",
            "SECRET_KEY": "secret-for-the-grpc-processes-0123456789",
            "JWT_SECRET_KEY": app.config["JWT_SECRET_KEY"],
            "MAIL_SERVER": "127.0.0.1",
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"] or "",
            "LOG_FORMAT": "json",
            "GRPC_PORT": str(self.port),
            "GRPC_WORKERS": str(workers),
            "GRPC_MAX_WORKERS": "4",
            "METRICS_PORT": str(self.metrics_port),
            "METRICS_HOST": "127.0.0.1",
        }
        if workers > 1:  # the parent empties it and gives it to its children
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir)
        self.log = open(tmp_path / "grpc.log", "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "grpc_server.py"], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def children(self) -> set[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return {int(pid) for pid in path.read_text().split()} if path.exists() else set()

    def channel(self) -> grpc.Channel:
        """A channel on its own new connection (channels in one process share them by default)."""
        return grpc.insecure_channel(
            f"127.0.0.1:{self.port}", options=[("grpc.use_local_subchannel_pool", 1)]
        )

    def validate(self, token: str) -> auth_pb2.ValidateTokenResponse:
        with self.channel() as channel:
            request = auth_pb2.ValidateTokenRequest(token=token)
            return auth_pb2_grpc.AuthServiceStub(channel).ValidateToken(
                request, timeout=10, wait_for_ready=True
            )

    def metrics(self) -> str:
        return requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

    def wait_ready(self, children: int) -> None:
        wait_for(lambda: len(self.children()) == children, timeout=60, what=f"{children} gRPC children")
        wait_for(self.serving, timeout=60, what="the gRPC health service")

    def serving(self) -> bool:
        try:
            with self.channel() as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=GRACE_SECONDS + 10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.log.close()


@pytest.fixture
def start_server(app, tmp_path):
    started: list[Server] = []

    def start(workers: int = 2, port: int | None = None) -> Server:
        server = Server(app, tmp_path, workers, port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_every_child_answers_and_the_metrics_add_up(app, user, auth_headers, start_server):
    server = start_server(workers=2)
    server.wait_ready(children=2)
    children = server.children()
    token = auth_headers(user)["Authorization"].split()[1]

    replies = [server.validate(token) for _ in range(20)]
    assert all(reply.valid and reply.user_id == user["id"] for reply in replies)
    # Every child answered some (each wrote its own metrics file: <kind>_<pid>.db).
    writers = {int(name.rsplit("_", 1)[1].removesuffix(".db")) for name in os.listdir(server.metrics_dir)}
    assert children <= writers
    # One metrics endpoint, every child's calls summed.
    assert metric_value(server.metrics(), CALLS, **VALIDATE) == 20
    # Only the families a gRPC server records (no empty http_*, cache_* or rq_* ones).
    assert "http_requests_total" not in server.metrics() and "cache_requests_total" not in server.metrics()

    # Revocation is immediate in every process: the next call on any connection says so.
    with app.app_context():
        revoke_sessions(user_id=user["id"])
        db.session.commit()
    replies = [server.validate(token) for _ in range(10)]
    assert all(not reply.valid and "revoked" in reply.error for reply in replies)
    assert metric_value(server.metrics(), CALLS, **VALIDATE) == 30

    with server.channel() as channel:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (reply,) = list(reflection.ServerReflectionInfo(iter([request]), timeout=10))
    assert SERVICE_NAME in {service.name for service in reply.list_services_response.service}
    # process_* cover the parent and both children: more memory than the parent alone.
    rss = metric_value(server.metrics(), "process_resident_memory_bytes")
    parent_rss = int(Path(f"/proc/{server.proc.pid}/statm").read_text().split()[1]) * os.sysconf(
        "SC_PAGE_SIZE"
    )
    assert rss > 2 * parent_rss


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_every_process_with_exit_0(start_server, workers):
    server = start_server(workers=workers)
    server.wait_ready(children=workers if workers > 1 else 0)
    children = server.children()
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=GRACE_SECONDS + 5) == 0
    assert time.monotonic() - started < GRACE_SECONDS
    assert not any(alive(pid) for pid in children)
    # One start line and one "stopped" for the server, however many processes serve it.
    lines = Path(server.log.name).read_text(errors="replace").splitlines()
    said = [json.loads(line)["message"] for line in lines if line.startswith("{") and '"grpc_server"' in line]
    assert sum(message.startswith("grpc starting: listen=") for message in said) == 1, said
    assert said.count("gRPC server stopped") == 1, said


def test_a_killed_child_is_replaced(user, auth_headers, start_server):
    server = start_server(workers=2)
    server.wait_ready(children=2)
    first = server.children()
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(server.children() - first) == 1 and len(server.children()) == 2, what="a new child")
    assert victim not in server.children()
    token = auth_headers(user)["Authorization"].split()[1]
    assert all(server.validate(token).valid for _ in range(10))
    assert server.stop() == 0


def test_children_stop_when_the_parent_is_killed(start_server):
    server = start_server(workers=2)
    server.wait_ready(children=2)
    children = server.children()
    server.proc.kill()
    server.proc.wait(timeout=10)
    wait_for(
        lambda: not any(alive(pid) for pid in children), timeout=GRACE_SECONDS, what="the orphans to stop"
    )


def test_a_port_another_server_holds_is_refused_before_any_child_starts(start_server, tmp_path):
    """The children would share the port (SO_REUSEPORT) with whoever holds it: the parent
    checks first and refuses in one line (#23), instead of starting children that join it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = start_server(workers=2, port=port)
        assert server.proc.wait(timeout=60) == CONFIG_EXIT_STATUS
        assert not server.children()
    output = (tmp_path / "grpc.log").read_text()
    assert f"configuration error: GRPC_PORT {port}: cannot listen" in output
    assert "Traceback" not in output

"""ValidateToken calls/second (gRPC) vs `GET /api/v1/users/me` requests/second (gunicorn).

`python bench/token_check.py` starts `python grpc_server.py` and `gunicorn wsgi:app -c
gunicorn.conf.py` against PostgreSQL (BENCH_DATABASE_URL, else DATABASE_URL), logs a user
in, then drives each side in turn with the same number of client threads for the same time
(BENCH_SECONDS, BENCH_CONCURRENCY) and writes bench/results/token_check.json.
Both sides do the same work: one token check (signature, expiry, type, session row, user row).
Client and servers share this machine, so the figures compare the two paths; they are not a
capacity figure for a real deployment.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import requests  # noqa: E402

from project.rpc.generated import auth_pb2, auth_pb2_grpc  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "token_check.json"
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
HTTP_WORKERS = int(os.environ.get("BENCH_HTTP_WORKERS", "2"))
HTTP_THREADS = int(os.environ.get("BENCH_HTTP_THREADS", "4"))
GRPC_WORKERS = int(os.environ.get("BENCH_GRPC_WORKERS", "8"))
SECRETS = {
    "SECRET_KEY": "bench-secret-key-0123456789abcdef0123",
    "JWT_SECRET_KEY": "bench-jwt-secret-key-0123456789abcdef",
    "MAIL_SERVER": "127.0.0.1",  # production refuses to start without one; the bench sends none
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError("a server did not come up in time")


def prepare(database_url: str) -> str:
    """Migrate, create a bench user and return an access token of a new session."""
    os.environ.update(SECRETS)
    from flask_migrate import upgrade

    from project import create_app
    from project.auth.sessions import start_session
    from project.extensions import db
    from project.passwords import hash_password
    from project.users.models import User

    app = create_app(
        app_env="production",
        overrides={"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": None, **SECRETS},
    )
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        name = f"bench-{uuid.uuid4().hex[:10]}"
        user = User(
            email=f"{name}@example.com",
            username=name,
            password_hash=hash_password(uuid.uuid4().hex),
            role="user",
            is_active=True,
            is_verified=True,
        )
        db.session.add(user)
        db.session.commit()
        token = start_session(user, "bench", "127.0.0.1")["access_token"]
        db.session.commit()
        db.engine.dispose()
    return token


def drive(call, seconds: float, concurrency: int) -> dict:
    """`call()` returns True on success; run it from `concurrency` threads for `seconds`."""
    stop = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency

    def loop(i: int) -> None:
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                ok = call()
            except Exception:
                ok = False
            if ok:
                latencies[i].append(time.perf_counter() - started)
            else:
                errors[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(concurrency)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    done = sorted(x for per_thread in latencies for x in per_thread)
    if not done:
        return {"ok": 0, "errors": sum(errors), "per_second": 0.0}
    return {
        "ok": len(done),
        "errors": sum(errors),
        "seconds": round(elapsed, 2),
        "per_second": round(len(done) / elapsed, 1),
        "latency_ms": {
            "p50": round(statistics.median(done) * 1000, 2),
            "p99": round(done[min(len(done) - 1, int(len(done) * 0.99))] * 1000, 2),
        },
    }


def bench_grpc(port: int, token: str) -> dict:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    request = auth_pb2.ValidateTokenRequest(token=token)
    first = stub.ValidateToken(request, timeout=5)
    if not first.valid:
        return {"error": f"token not valid: {first.error}"}
    result = drive(lambda: stub.ValidateToken(request, timeout=5).valid, SECONDS, CONCURRENCY)
    channel.close()
    return result


def bench_http(port: int, token: str) -> dict:
    url = f"http://127.0.0.1:{port}/api/v1/users/me"
    headers = {"Authorization": f"Bearer {token}"}
    probe = requests.get(url, headers=headers, timeout=5)
    if probe.status_code != 200:
        return {"error": f"GET /api/v1/users/me answered {probe.status_code}; needs the users blueprint"}
    local = threading.local()

    def call() -> bool:
        if not hasattr(local, "session"):
            local.session = requests.Session()  # one keep-alive connection per client thread
        return local.session.get(url, headers=headers, timeout=5).status_code == 200

    return drive(call, SECONDS, CONCURRENCY)


def main() -> int:
    database_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if not database_url or not database_url.startswith("postgres"):
        print("set BENCH_DATABASE_URL (or DATABASE_URL) to a PostgreSQL database", file=sys.stderr)
        return 2
    token = prepare(database_url)
    http_port, grpc_port = free_port(), free_port()
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        **SECRETS,
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "RATELIMIT_ENABLED": "false",
        "GRPC_PORT": str(grpc_port),
        "GRPC_MAX_WORKERS": str(GRPC_WORKERS),
        "GUNICORN_BIND": f"127.0.0.1:{http_port}",
        "GUNICORN_WORKERS": str(HTTP_WORKERS),
        "GUNICORN_THREADS": str(HTTP_THREADS),
    }
    env.pop("REDIS_URL", None)  # the token check touches only PostgreSQL; keep Redis out of both
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    servers = [
        subprocess.Popen([sys.executable, "grpc_server.py"], cwd=ROOT, env=env),
        subprocess.Popen(
            [str(bin_dir / "gunicorn"), "wsgi:app", "-c", "gunicorn.conf.py"], cwd=ROOT, env=env
        ),
    ]
    try:
        wait_until(lambda: requests.get(f"http://127.0.0.1:{http_port}/health", timeout=1).ok)
        results = {
            "grpc_validate_token": bench_grpc(grpc_port, token),
            "http_users_me": bench_http(http_port, token),
        }
    finally:
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            server.wait(timeout=30)
    grpc_rate = results["grpc_validate_token"].get("per_second")
    http_rate = results["http_users_me"].get("per_second")
    report = {
        "benchmark": "ValidateToken (gRPC) vs GET /api/v1/users/me (HTTP), one token check each",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "seconds_per_side": SECONDS,
            "client_threads": CONCURRENCY,
            "gunicorn_workers": HTTP_WORKERS,
            "gunicorn_threads": HTTP_THREADS,
            "grpc_thread_pool": GRPC_WORKERS,
            "database": "postgresql",
        },
        "results": results,
        "grpc_to_http_ratio": round(grpc_rate / http_rate, 2) if grpc_rate and http_rate else None,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

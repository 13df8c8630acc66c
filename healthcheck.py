"""`python healthcheck.py [ROLE]`: the container healthcheck of every role; exit 0 healthy, 1 not.

ROLE is api, worker, scheduler, grpc or migrate; without it, the role is read from the
container's command line (PID 1 and its arguments: `gunicorn ...`, `python worker.py
--scheduler`, ...), so the image's one HEALTHCHECK fits every role. One line is printed
either way. Each check is what the role's liveness means:
- api: GET /health on PORT answers 200;
- worker: a worker of this host beat within its TTL (`worker.py --check`);
- scheduler: the scheduler's alive key is fresh (project/schedule.py);
- grpc: the standard gRPC health service says SERVING on GRPC_PORT;
- migrate (and any one-off command): healthy while it runs.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

ROLES = ("api", "worker", "scheduler", "grpc", "migrate")


def role_of(command: list[str]) -> str:
    words = [Path(word).name for word in command]
    if "grpc_server.py" in words:
        return "grpc"
    if "worker.py" in words:
        return "scheduler" if "--scheduler" in words else "worker"
    if "gunicorn" in words:
        return "api"
    return "migrate"


def container_command() -> list[str]:
    try:
        return Path("/proc/1/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def check_api() -> str:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health"
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  (a fixed local URL)
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
    return f"{url} ok"


def check_grpc() -> str:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    target = f"127.0.0.1:{os.environ.get('GRPC_PORT', '50051')}"
    with grpc.insecure_channel(target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2).status
    if status != health_pb2.HealthCheckResponse.SERVING:
        raise RuntimeError(
            f"gRPC health on {target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}"
        )
    return f"gRPC health on {target}: SERVING"


def check_redis_role(role: str) -> str:
    from project import create_app

    app = create_app()
    if role == "worker":
        from worker import check_own_worker

        if check_own_worker(app) != 0:  # prints its own line
            raise SystemExit(1)
        raise SystemExit(0)
    from project.schedule import SCHEDULER_ALIVE_KEY

    if not app.extensions["redis"].exists(SCHEDULER_ALIVE_KEY):
        raise RuntimeError(f"{SCHEDULER_ALIVE_KEY} is missing: no scheduler ran lately")
    return "scheduler alive"


def main(argv: list[str]) -> int:
    role = argv[1] if len(argv) > 1 else role_of(container_command())
    if role not in ROLES:
        print(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        return 2
    try:
        if role == "api":
            line = check_api()
        elif role == "grpc":
            line = check_grpc()
        elif role in ("worker", "scheduler"):
            line = check_redis_role(role)
        else:
            line = f"{role}: running"
    except Exception as exc:  # any failure is "unhealthy", said in one line
        print(f"unhealthy ({role}): {exc.__class__.__name__}: {exc}")
        return 1
    print(f"ok ({role}): {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

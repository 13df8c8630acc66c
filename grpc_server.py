"""`python grpc_server.py`: the gRPC server on GRPC_PORT (default 50051).

Offers `auth.AuthService`, the standard health service (`grpc.health.v1.Health`) and server
reflection. Every unary call is logged with a request id and counted in the metrics
(project/ops/interceptors.py), served on `METRICS_PORT` when set. SIGTERM/SIGINT: health
turns NOT_SERVING, in-flight calls get GRACE_SECONDS to finish, then the process exits 0.

GRPC_WORKERS processes (default: one per CPU) serve the one port: a Python process runs one
call's Python at a time (the GIL), so one process cannot use a second core. The parent forks
them before it creates any gRPC object (gRPC's threads do not survive a fork), each binds the
port with SO_REUSEPORT (the kernel spreads the client connections over them: a client on one
HTTP/2 connection talks to one process), and it supervises them: a child that dies is
replaced, SIGTERM/SIGINT are passed on (each child drains as above), and when children keep
dying it stops them all and exits 1. It serves the metrics of every child, summed
(prometheus_client's multiprocess mode). GRPC_WORKERS=1: one process, no parent.

In each process ValidateToken and health's Check run on GRPC_MAX_WORKERS threads of their own
(default 2: one runs Python while the other waits on PostgreSQL; more only take turns at the
GIL), and reflection's streams on OTHER_CALL_THREADS others.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from concurrent import futures
from wsgiref.simple_server import WSGIServer

import grpc
from flask import Flask
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from config import ConfigError, check_environment, get_config, refusing_bad_config, start_line
from project import create_app, tracing
from project.rpc.generated import auth_pb2
from project.rpc.service import add_auth_service

# Nothing above imports prometheus_client: with several processes the parent must set
# PROMETHEUS_MULTIPROC_DIR first (prometheus_client picks its mode when first imported), so
# the modules that do (project.metrics, the interceptor) are imported where they are used.

log = logging.getLogger("grpc_server")
# The metric families this process's /metrics serves (besides process_* and python_*).
GRPC_METRICS = ("grpc_",)

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name
# The unary checks (ValidateToken and health's Check) run on a pool of their own, of
# GRPC_MAX_WORKERS threads. Reflection runs on the server's pool, of this many threads: a
# reflection stream holds a thread for as long as its client keeps it open, and must not take
# the threads of the token checks, nor of the health checks an orchestrator restarts us by.
CHECKED_CALLS = (f"/{SERVICE_NAME}/ValidateToken", f"/{health.SERVICE_NAME}/Check")
OTHER_CALL_THREADS = 4
GRACE_SECONDS = 10.0
# The parent gives up (stops the rest, exits 1) when this many children died within the window.
MAX_DEATHS, DEATH_WINDOW_SECONDS = 5, 60.0
RESTART_DELAY_SECONDS = 0.5


class GrpcServer:
    """A started server: `port` is the bound one (useful with port 0)."""

    def __init__(
        self, server: grpc.Server, port: int, health_servicer: health.HealthServicer, checks: futures.Executor
    ):
        self.server = server
        self.port = port
        self.health = health_servicer
        self.checks = checks

    def stop(self, grace: float | None = GRACE_SECONDS) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        self.checks.shutdown(wait=False)


def serve(
    port: int,
    app: Flask | None = None,
    host: str | None = None,
    max_workers: int | None = None,
    reuse_port: bool = False,
) -> GrpcServer:
    """Start the server on `port` (0: any free port) of `host` (default GRPC_HOST) and return
    it; does not block. `max_workers`: the threads of the checked calls (default
    GRPC_MAX_WORKERS). `reuse_port`: only for the supervised processes sharing one port."""
    from project.ops.interceptors import ObservabilityInterceptor

    app = app or create_app()
    host = host or app.config["GRPC_HOST"]
    workers = max_workers or app.config["GRPC_MAX_WORKERS"]
    checks = futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc-check")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=OTHER_CALL_THREADS, thread_name_prefix="grpc"),
        interceptors=[
            ObservabilityInterceptor(thread_pools=dict.fromkeys(CHECKED_CALLS, checks)),
            *tracing.grpc_server_interceptors(),  # spans of the calls, when OTEL_* turn tracing on
        ],
        # gRPC's default is SO_REUSEPORT on, with which a second server on a bound port starts
        # without an error and takes a share of the connections. Only the processes of one
        # supervisor share the port (it checked the port was free first: Supervisor.run).
        options=[("grpc.so_reuseport", 1 if reuse_port else 0)],
    )
    add_auth_service(app, server)

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpcio raises where older versions returned 0
        bound = 0
    if bound == 0:
        checks.shutdown(wait=False)
        raise ConfigError(f"GRPC_PORT {port}: cannot listen on {host}:{port} (another server holds it?)")
    server.start()
    return GrpcServer(server, bound, health_servicer, checks)


def run_until_signalled(app: Flask, metrics: bool = True, parent: int | None = None) -> int:
    """Serve on GRPC_PORT until SIGTERM/SIGINT, then drain for GRACE_SECONDS; returns 0.
    `parent`: a supervised child (sharing the port with its siblings) also stops when that
    process is gone (killed outright)."""
    stopping = threading.Event()

    def on_signal(signum, _frame):
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running = serve(int(app.config["GRPC_PORT"]), app, reuse_port=parent is not None)
    if parent is None:
        threads = f"processes=1 threads={app.config['GRPC_MAX_WORKERS']}"
        log.info("%s", start_line("grpc", f"{app.config['GRPC_HOST']}:{running.port}", threads, app.config))
    else:
        log.debug("gRPC worker listening on port %s", running.port)
    if metrics:
        from project.metrics import serve_process_metrics

        serve_process_metrics(app.config["METRICS_PORT"], app.config["METRICS_HOST"], families=GRPC_METRICS)
    while not stopping.wait(0.5):
        if parent is not None and os.getppid() != parent:
            log.warning("the gRPC parent process is gone, shutting down")
            break
    running.stop(GRACE_SECONDS)
    # Under the supervisor (parent given) it says "stopped" once for all of them.
    log.log(logging.INFO if parent is None else logging.DEBUG, "gRPC server stopped")
    return 0


class Supervisor:
    """The parent of `count` serving processes (see the module's docstring)."""

    def __init__(self, app: Flask, count: int):
        self.app = app
        self.count = count
        self.children: dict[int, float] = {}  # pid -> when it started
        self.deaths: collections.deque[float] = collections.deque()
        self.stop_signal: int | None = None
        self.metrics_server: WSGIServer | None = None

    def run(self) -> int:
        from prometheus_client import multiprocess

        from project.metrics import serve_process_metrics

        config = self.app.config
        ensure_port_free(config["GRPC_HOST"], int(config["GRPC_PORT"]))
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        for _ in range(self.count):
            self.spawn()
        self.metrics_server = serve_process_metrics(
            self.app.config["METRICS_PORT"],
            self.app.config["METRICS_HOST"],
            pids=self.server_pids,
            families=GRPC_METRICS,
        )
        listen = f"{config['GRPC_HOST']}:{config['GRPC_PORT']}"
        threads = f"processes={self.count} threads={config['GRPC_MAX_WORKERS']}"
        log.info("%s", start_line("grpc", listen, threads, config))
        while self.stop_signal is None:
            for pid, code in self.reap():
                multiprocess.mark_process_dead(pid)
                now = time.monotonic()
                self.deaths.append(now)
                while self.deaths and self.deaths[0] < now - DEATH_WINDOW_SECONDS:
                    self.deaths.popleft()
                if len(self.deaths) >= MAX_DEATHS:
                    log.error(
                        "gRPC workers keep dying (%s in %.0f s): stopping", MAX_DEATHS, DEATH_WINDOW_SECONDS
                    )
                    self.stop(signal.SIGTERM)
                    return 1
                log.warning("gRPC worker %s exited (%s), starting another", pid, code)
                time.sleep(RESTART_DELAY_SECONDS)
                self.spawn()
            time.sleep(0.2)
        return self.stop(self.stop_signal)

    def on_signal(self, signum: int, _frame) -> None:
        log.info("received %s, stopping the gRPC workers", signal.Signals(signum).name)
        self.stop_signal = signum

    def server_pids(self) -> list[int]:
        return [os.getpid(), *self.children]

    def spawn(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # else the child writes the parent's buffered lines again
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.children[pid] = time.monotonic()
            return
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            if self.metrics_server is not None:
                self.metrics_server.socket.close()  # the parent's, inherited: not this one's to hold
            code = run_until_signalled(self.app, metrics=False, parent=parent)
        except BaseException:
            log.exception("gRPC worker failed")
        finally:
            logging.shutdown()
            os._exit(code)

    def reap(self) -> list[tuple[int, int]]:
        """The children that exited since the last look: (pid, exit code or -signal)."""
        ended = []
        for pid in list(self.children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                del self.children[pid]
                ended.append((pid, os.waitstatus_to_exitcode(status)))
        return ended

    def stop(self, signum: int) -> int:
        """Pass `signum` on, wait for the children to drain; 0 if every one exited 0."""
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        deadline = time.monotonic() + GRACE_SECONDS + 5
        failed = False
        while self.children and time.monotonic() < deadline:
            for _pid, code in self.reap():
                failed = failed or code != 0
            time.sleep(0.1)
        for pid in self.children:
            log.error("gRPC worker %s did not stop in time: killed", pid)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            failed = True
        self.children.clear()
        log.info("gRPC server stopped")
        return 1 if failed else 0


def ensure_port_free(host: str, port: int) -> None:
    """Before the supervised processes bind `port` together (SO_REUSEPORT, which would let them
    join a server already there): refuse, in one line, when something else listens on it."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds: TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"GRPC_PORT {port}: cannot listen on {host}:{port} ({exc.strerror})") from None


def prepare_metrics_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR for the children, emptied (stale files would count twice);
    a fresh temporary one when unset. Returns the directory to remove at exit, if any."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not given:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="grpc-metrics-")
        return os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(given, ignore_errors=True)  # (a mount point keeps itself, emptied)
    os.makedirs(given, exist_ok=True)
    return None


def main() -> int:
    with refusing_bad_config():
        # The environment is checked before the metrics directory is set up (create_app
        # imports prometheus_client, which must come after it), and the app once more.
        check_environment()
        count = get_config().GRPC_WORKERS
        if count <= 1:
            return run_until_signalled(create_app())
        made = prepare_metrics_dir()
        try:
            return Supervisor(create_app(), count).run()
        finally:
            if made:
                shutil.rmtree(made, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

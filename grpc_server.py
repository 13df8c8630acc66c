"""`python grpc_server.py`: the gRPC server on GRPC_PORT (default 50051).

Offers `auth.AuthService`, the standard health service (`grpc.health.v1.Health`) and server
reflection. Every unary call is logged with a request id and counted in the metrics
(project/ops/interceptors.py), served on `METRICS_PORT` when set. SIGTERM/SIGINT: health
turns NOT_SERVING, in-flight calls get GRACE_SECONDS to finish, then the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from concurrent import futures

import grpc
from flask import Flask
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from project import create_app
from project.metrics import serve_process_metrics
from project.ops.interceptors import ObservabilityInterceptor
from project.rpc.generated import auth_pb2, auth_pb2_grpc
from project.rpc.service import AuthService

log = logging.getLogger("grpc_server")

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name
GRACE_SECONDS = 10.0


class GrpcServer:
    """A started server: `port` is the bound one (useful with port 0)."""

    def __init__(self, server: grpc.Server, port: int, health_servicer: health.HealthServicer):
        self.server = server
        self.port = port
        self.health = health_servicer

    def stop(self, grace: float | None = GRACE_SECONDS) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


def serve(
    port: int, app: Flask | None = None, host: str = "[::]", max_workers: int | None = None
) -> GrpcServer:
    """Start the server on `port` (0: any free port) and return it; does not block."""
    app = app or create_app()
    workers = max_workers or app.config["GRPC_MAX_WORKERS"]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc"),
        interceptors=[ObservabilityInterceptor()],
    )
    auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthService(app), server)

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"could not bind the gRPC server to {host}:{port}")
    server.start()
    return GrpcServer(server, bound, health_servicer)


def main() -> int:
    app = create_app()
    port = int(app.config["GRPC_PORT"])
    running = serve(port, app)
    log.info("gRPC server listening on port %s", running.port)
    serve_process_metrics(app.config["METRICS_PORT"], app.config["METRICS_HOST"])

    stopping = threading.Event()

    def on_signal(signum, _frame):
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping.wait(0.5):
        pass
    running.stop(GRACE_SECONDS)
    log.info("gRPC server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

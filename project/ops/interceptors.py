"""Every gRPC call: a request id, one access log line, and its count and latency in the metrics.

The request id comes from the `x-request-id` metadata when it is a sane token (the same rule
as the HTTP header), else a new one; it is sent back as trailing metadata (with the status, so
in the same write as the reply: as initial metadata it cost a write of its own, measured in
bench/README.md) and is on every log line of the call. Tokens
and messages are never logged: method, status code and duration only.

This runs on every call, so it does little: the wrapped handler of each method is built once,
the labelled metrics are looked up once per method and code, and the access line's fields are
only assembled when the access log is on.

`thread_pools` (method -> executor) runs a method's calls on an executor of its own instead of
the server's (gRPC's `experimental_thread_pool`, as grpc_health uses it): grpc_server.py gives
the token and health checks a pool of their own, so reflection's streams cannot hold its threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from project.metrics import grpc_recorder
from project.ops.logs import request_id_var, sane_request_id

access_log = logging.getLogger("access")
REQUEST_ID_KEY = "x-request-id"


def _request_id(context: grpc.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY:
            return sane_request_id(value)
    return sane_request_id("")


def observe(method: str, behaviour: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
    """`behaviour` (a unary handler of `method`) with the request id, the log line and the metrics."""
    record = grpc_recorder(method)

    def observed(request: Any, context: grpc.ServicerContext) -> Any:
        request_id = _request_id(context)
        token = request_id_var.set(request_id)
        context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
        started = time.perf_counter()
        failed = False
        try:
            return behaviour(request, context)
        except Exception:
            failed = True
            raise
        finally:
            code = context.code() or (grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK)
            name = code.name if isinstance(code, grpc.StatusCode) else str(code)
            elapsed = time.perf_counter() - started
            record(name, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                duration_ms = elapsed * 1000
                access_log.info(
                    "gRPC %s %s %.1fms",
                    method,
                    name,
                    duration_ms,
                    extra={"rpc": method, "code": name, "duration_ms": round(duration_ms, 2)},
                )
            request_id_var.reset(token)

    return observed


class ObservabilityInterceptor(grpc.ServerInterceptor):
    def __init__(self, thread_pools: dict[str, ThreadPoolExecutor] | None = None) -> None:
        # method -> (the handler gRPC found, its observed wrapper)
        self._wrapped: dict[str, tuple[Any, Any]] = {}
        self._thread_pools = thread_pools or {}

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler  # streaming calls (health Watch, reflection) pass as they are
        cached = self._wrapped.get(details.method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        behaviour = observe(details.method, handler.unary_unary)
        pool = self._thread_pools.get(details.method)
        if pool is not None:
            behaviour.experimental_thread_pool = pool  # type: ignore[attr-defined]
        wrapped = grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[details.method] = (handler, wrapped)
        return wrapped

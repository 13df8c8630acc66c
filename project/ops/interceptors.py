"""Every gRPC call: a request id, one access log line, and its count and latency in the metrics.

The request id comes from the `x-request-id` metadata when it is a sane token (the same rule
as the HTTP header), else a new one; it is sent back as initial metadata and is on every log
line of the call. Tokens and messages are never logged: method, status code and duration only.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc

from project.metrics import record_grpc
from project.ops.logs import REQUEST_ID_PATTERN, request_id_var

access_log = logging.getLogger("access")
REQUEST_ID_KEY = "x-request-id"


class ObservabilityInterceptor(grpc.ServerInterceptor):
    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler  # streaming calls (health Watch, reflection) pass as they are
        method = details.method
        given = dict(details.invocation_metadata or ()).get(REQUEST_ID_KEY, "")
        sane = isinstance(given, str) and REQUEST_ID_PATTERN.match(given)
        request_id = given if sane else uuid.uuid4().hex
        behaviour = handler.unary_unary

        def observed(request: Any, context: grpc.ServicerContext) -> Any:
            token = request_id_var.set(request_id)
            context.send_initial_metadata(((REQUEST_ID_KEY, request_id),))
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
                record_grpc(method, name, elapsed)
                access_log.info(
                    "gRPC %s %s %.1fms",
                    method,
                    name,
                    elapsed * 1000,
                    extra={"rpc": method, "code": name, "duration_ms": round(elapsed * 1000, 2)},
                )
                request_id_var.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

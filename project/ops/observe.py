"""What every request gets, in one WSGI middleware around Flask: its request id (echoed in
`X-Request-ID` and on every log line of the request), one access line and the request metrics.
`register_observability` installs it as the stack's observer (project/wsgi_stack.py).

One wrapper instead of Flask hooks (before, after and teardown): a hook costs Flask a
coroutine check and a call each, and these touched the werkzeug `Request`/`Response` wrappers
where the WSGI status and header list do (the cost: bench/README.md). The final status and
headers are seen here, after every Flask hook (Flask-Limiter's `Retry-After` included) and the
error guard, and the URL rule is read from the request while its context is live.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from project.metrics import record_request
from project.ops.logs import REQUEST_ID_HEADER, access_log, request_id_var, sane_request_id
from project.security_headers import drop_header
from project.wsgi_stack import StartResponse, WSGIApp


class RequestObserver:
    def __init__(self, wsgi_app: WSGIApp) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = sane_request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        token = request_id_var.set(request_id)
        seen: list[Any] = []

        def observed(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            code = int(status[:3])
            drop_header(headers, "x-request-id")  # ours replaces it
            headers.append((REQUEST_ID_HEADER, request_id))
            request = environ.get("werkzeug.request")  # Flask's, while its context is live
            rule = request.url_rule if request is not None else None
            seen[:] = (code, rule.rule if rule is not None else None, request)
            return start_response(status, headers, exc_info)

        try:
            body = self.wsgi_app(environ, observed)
            if seen:
                code, rule, request = seen
                elapsed = time.perf_counter() - started
                record_request(environ.get("REQUEST_METHOD", ""), rule, code, elapsed)
                if access_log.isEnabledFor(logging.INFO):
                    _log_access(environ, request, code, elapsed * 1000)
            return body
        finally:
            request_id_var.reset(token)


def _log_access(environ: dict, request: Any, status: int, duration_ms: float) -> None:
    """The access line: method, path without the query string, status, duration."""
    method = environ.get("REQUEST_METHOD", "")
    path = request.path if request is not None else environ.get("PATH_INFO", "")
    access_log.info(
        "%s %s %s %.1fms",
        method,
        path,
        status,
        duration_ms,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(duration_ms, 2),
            "remote_addr": environ.get("REMOTE_ADDR"),
        },
    )

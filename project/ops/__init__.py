"""Operations: health, metrics, logging with request ids, CORS and the RQ dashboard."""

from __future__ import annotations

import time

from flask import Flask, g, request


def register_observability(app: Flask) -> None:
    """Logging, request metrics, CORS and the RQ dashboard; health and metrics skip rate limits."""
    from project.extensions import cors, limiter
    from project.ops.dashboard import register_dashboard
    from project.ops.logs import configure_logging, register_request_logging
    from project.ops.routes import blp

    configure_logging(app)
    register_request_logging(app)
    register_request_metrics(app)
    origins = app.config.get("CORS_ORIGINS") or []
    if origins:
        cors.init_app(
            app,
            origins=origins,
            expose_headers=["X-Request-ID", "X-Cache", "Retry-After"],
            max_age=600,
        )
    register_dashboard(app)
    limiter.exempt(blp)


def register_request_metrics(app: Flask) -> None:
    from project.metrics import record_request

    @app.after_request
    def count_request(response):
        started = g.get("request_started")  # set first of all hooks (ops/logs.py)
        rule = request.url_rule.rule if request.url_rule is not None else None
        elapsed = time.perf_counter() - started if started else 0.0
        record_request(request.method, rule, response.status_code, elapsed)
        return response

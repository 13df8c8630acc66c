"""Operations: health, metrics, logging with request ids, CORS and the RQ dashboard."""

from __future__ import annotations

from flask import Flask


def register_observability(app: Flask) -> None:
    """Logging, request metrics, CORS and the RQ dashboard; health and metrics skip rate limits."""
    from project.extensions import cors, limiter
    from project.ops.dashboard import register_dashboard
    from project.ops.logs import configure_logging
    from project.ops.observe import RequestObserver
    from project.ops.routes import blp
    from project.wsgi_stack import observe_requests

    configure_logging(app)
    observe_requests(app, RequestObserver)  # request ids, access lines, request metrics
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
    app.add_url_rule("/favicon.ico", "favicon", favicon)
    limiter.exempt(favicon)


def favicon():
    """Browsers ask every page's host for one (the docs pages too): Swagger UI's icon, a day cached."""
    from pathlib import Path

    from flask import current_app, send_file

    icon = (
        Path(current_app.root_path)
        / current_app.config["OPENAPI_SWAGGER_UI_URL"].strip("/")
        / "favicon-32x32.png"
    )
    return send_file(icon, mimetype="image/png", max_age=86400)

"""The RQ dashboard at /rq, behind HTTP basic auth; not mounted (404) without credentials
or without Redis."""

from __future__ import annotations

import hmac

from flask import Flask, Response, request

URL_PREFIX = "/rq"


def _same(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode(), expected.encode())


def register_dashboard(app: Flask) -> bool:
    username = app.config.get("RQ_DASHBOARD_USERNAME")
    password = app.config.get("RQ_DASHBOARD_PASSWORD")
    connection = app.extensions.get("redis")
    if not (username and password and connection is not None):
        return False

    import rq_dashboard

    # rq-dashboard would copy our REDIS_URL under a deprecation warning; give it its own key.
    app.config["RQ_DASHBOARD_REDIS_URL"] = (app.config["REDIS_URL"],)
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 2500)
    app.config.setdefault("RQ_DASHBOARD_DELETE_JOBS", False)
    app.redis_conn = connection  # type: ignore[attr-defined]  # where rq-dashboard looks
    # The blueprint object is shared by every app in the process, so the auth check lives on
    # this app (an app-level hook runs before the blueprint's own connection hook).
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)

    @app.before_request
    def dashboard_basic_auth():
        if request.blueprint != rq_dashboard.blueprint.name:
            return None
        auth = request.authorization
        if auth is None or not (_same(auth.username, username) & _same(auth.password, password)):
            return Response(
                "Authentication required.", 401, {"WWW-Authenticate": 'Basic realm="RQ Dashboard"'}
            )
        return None

    return True

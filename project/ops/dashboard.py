"""The RQ dashboard at /rq, behind HTTP basic auth; not mounted (404) without credentials
or without Redis.

Its state-changing routes (empty a queue, requeue, delete, compact: every rule that takes a
POST) refuse cross-site requests, since a browser replays basic-auth credentials to any page
that posts to them (CSRF): a POST from another origin (`Origin`, or `Sec-Fetch-Site:
cross-site`/`same-site`) is a 403, and a GET to them is a 405 (rq-dashboard also requeues on
GET).
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Request, Response, current_app, request

from project.errors import error_response

URL_PREFIX = "/rq"


def _same(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode(), expected.encode())


def is_cross_site(req: Request) -> bool:
    """True for a request a page of another origin made (no header: not a browser, allowed)."""
    fetch_site = req.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return True
    origin = req.headers.get("Origin")
    # Host only: behind a TLS-terminating proxy the scheme seen here is not the browser's.
    return origin is not None and urlsplit(origin).netloc != req.host


def refuse_cross_site_changes() -> Response | None:
    """For the dashboard's state-changing rules: POST only, and only from its own origin."""
    rule = request.url_rule
    if rule is None or "POST" not in (rule.methods or ()):
        return None
    if request.method != "POST":
        return error_response(405, "This dashboard action needs a POST.", headers={"Allow": "POST"})
    if is_cross_site(request):
        return error_response(403, "Cross-site requests to the dashboard are refused.")
    return None


def _app_client(_url: str, **_options: Any) -> tuple[None, Any]:
    """rq-dashboard's own connection factory, replaced: it builds a new client from the URL on
    every request (its `instance_number` hook), outside our timeouts, TLS and Sentinel
    settings. The app's client (project/redis_client.py) serves every dashboard request."""
    return None, current_app.extensions["redis"]


def register_dashboard(app: Flask) -> bool:
    username = app.config.get("RQ_DASHBOARD_USERNAME")
    password = app.config.get("RQ_DASHBOARD_PASSWORD")
    connection = app.extensions.get("redis")
    if not (username and password and connection is not None):
        return False

    import rq_dashboard
    import rq_dashboard.web

    rq_dashboard.web.from_url = _app_client
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
            return error_response(
                401,
                "Authentication required.",
                headers={"WWW-Authenticate": 'Basic realm="RQ Dashboard"'},
                error="authentication_required",
            )
        return refuse_cross_site_changes()

    return True

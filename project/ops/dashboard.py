"""The RQ dashboard at /rq, behind HTTP basic auth; not mounted (404) without credentials
or without Redis.

Its state-changing routes (empty a queue, requeue, delete, compact: every rule that takes a
POST) refuse cross-site requests, since a browser replays basic-auth credentials to any page
that posts to them (CSRF): a POST from another origin (`Origin`, or `Sec-Fetch-Site:
cross-site`/`same-site`) is a 403, and a GET to them is a 405 (rq-dashboard also requeues on
GET).

No other site may frame it (`X-Frame-Options: DENY`, CSP `frame-ancestors 'none'`): a framed
dashboard would take clicks past the Origin check (clickjacking). Every answer of its own
is in the error shape: its 401, and a 404 for a job, queue, registry or instance that does
not exist (rq-dashboard itself raised NoSuchJobError, a 500, or showed an empty queue).
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Request, Response, current_app, request
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.queue import Queue

from project.errors import error_response
from project.jobs import QUEUE_NAMES
from project.wsgi_stack import keep_trailing_slash

URL_PREFIX = "/rq"
NO_FRAMING = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}
REGISTRIES = ("queued", "failed", "deferred", "started", "finished", "canceled", "scheduled")


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


def refuse_missing(connection) -> Response | None:
    """A 404 for a job, queue, registry or instance the rule names and Redis does not have."""
    args = request.view_args or {}
    if args.get("instance_number", 0) != 0:  # one Redis: instance 0 only
        return error_response(404, "No such dashboard instance.")
    if "job_id" in args and not Job.exists(args["job_id"], connection=connection):
        return error_response(404, "No such job.")
    if "queue_name" in args:
        known = set(QUEUE_NAMES) | {queue.name for queue in Queue.all(connection=connection)}
        if args["queue_name"] not in known:
            return error_response(404, "No such queue.")
    if "registry_name" in args and args["registry_name"] not in REGISTRIES:
        return error_response(404, "No such registry.")
    return None


def _is_dashboard_path(path: str) -> bool:
    return path == URL_PREFIX or path.startswith(URL_PREFIX + "/")


def register_dashboard(app: Flask) -> bool:
    # rq-dashboard routes its own slashes (its index is /rq/): the stack must not strip them.
    keep_trailing_slash(app, URL_PREFIX)
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
        return refuse_cross_site_changes() or refuse_missing(connection)

    @app.after_request
    def dashboard_not_framed(response: Response) -> Response:
        if _is_dashboard_path(request.path):
            response.headers.update(NO_FRAMING)
        return response

    @app.errorhandler(NoSuchJobError)
    def dashboard_missing_job(exc: NoSuchJobError):
        # A job gone between the check above and rq-dashboard's fetch.
        return error_response(404, "No such job.")

    return True

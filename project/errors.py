"""Domain errors and the one JSON error shape.

Every error the API answers looks like
`{"code": 422, "status": "Unprocessable Entity", "error": "validation_failed", "message": "...",
"errors": {...}}`. `error` is a stable code from `ERROR_CODES`, one per kind of error: clients
branch on it. The OAuth2 token endpoints (marked with `oauth2_errors`) answer RFC 6749 5.2's
codes instead and add `error_description`, so OAuth2 clients raise their own errors.
Services raise the `AppError` subclasses below; routes never build error bodies by hand.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from flask import Flask, current_app, has_request_context, jsonify, request
from marshmallow import Schema, fields, validate
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from project.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)


RETRY_SOON = {"Retry-After": "5"}

# The catalogue of `error` codes: what each means (README's table and the OpenAPI enum come
# from here). A code is never renamed: clients branch on it.
ERROR_CODES: dict[str, str] = {
    "malformed_request": "400: the body is not valid JSON or not the declared content type.",
    "invalid_link": "400: the emailed verification or reset token is invalid, expired or used.",
    "missing_token": "401: no `Authorization: Bearer` token.",
    "invalid_token": "401: the token is malformed, badly signed or of the wrong type.",
    "token_expired": "401: the token has expired; refresh it.",
    "token_revoked": "401: the token's session has ended (logout, password change, deactivation).",
    "authentication_required": "401: the RQ dashboard needs its basic-auth credentials.",
    "forbidden": "403: authenticated, but this role or user may not do this.",
    "wrong_password": "403: the `current_password` given to change the email or password is wrong.",
    "not_found": "404: no such resource (also another user's private one).",
    "method_not_allowed": "405: the path does not take this method (see `Allow`).",
    "conflict": "409: conflicts with the current state (no more specific code applies).",
    "email_taken": "409: another account has this email.",
    "username_taken": "409: another account has this username.",
    "sku_taken": "409: another product has this SKU.",
    "insufficient_stock": "409: the stock change would go below 0 (or above the maximum).",
    "illegal_transition": "409: the order's status does not allow this (pay, cancel).",
    "idempotency_key_reused": "409: this `Idempotency-Key` was used with another body.",
    "last_admin": "409: the last active admin cannot be demoted or deactivated.",
    "membership_conflict": "409: the owner cannot be made a member or removed.",
    "request_timeout": "408: the client took too long to send its request (the proxy's bound).",
    "payload_too_large": "413: the body is over `MAX_CONTENT_LENGTH`.",
    "uri_too_long": "414: the request line is too long (the proxy or gunicorn refused it).",
    "headers_too_large": "431: a header or all of them are too large (the proxy or gunicorn refused them).",
    "validation_failed": "422: the arguments are invalid; `errors` names the fields.",
    "login_locked": "429: too many failed logins for this identifier from this address.",
    "mail_rate_limited": "429: too many mails to this address or caused by this account (`MAIL_RATE_LIMIT`).",
    "rate_limited": "429: too many requests; retry after `Retry-After` seconds.",
    "internal_error": "500: a bug; the log has the details.",
    "upstream_failed": "502: the upstream API (posts, catalogue) failed.",
    "bad_gateway": "502: the proxy could not reach the API (gunicorn down or restarting); retry.",
    "service_unavailable": "503: a dependency (database, Redis, job queue) is down; retry.",
    "gateway_timeout": "504: the API did not answer the proxy in time.",
    # RFC 6749 5.2 (and 4.1.2.1), on the token endpoints only.
    "invalid_request": "Token endpoints (400/413/422): the request is missing or has a bad parameter.",
    "invalid_grant": "Token endpoints (401/403): bad credentials, or a bad, spent or revoked refresh token.",
    "unsupported_grant_type": "Token endpoints (422): a `grant_type` this endpoint does not take.",
    "temporarily_unavailable": "Token endpoints (429/503): try again after `Retry-After` seconds.",
    "server_error": "Token endpoints (500/502): a server fault.",
}

# The code of an answer no domain error named (werkzeug's, flask-smorest's, the limiter's).
STATUS_ERRORS = {
    400: "malformed_request",
    401: "invalid_token",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    408: "request_timeout",
    413: "payload_too_large",
    414: "uri_too_long",
    422: "validation_failed",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    502: "upstream_failed",
    503: "service_unavailable",
}

# RFC 6749 5.2 on the token endpoints: the project's code (or, failing that, the status) to
# the OAuth2 one.
OAUTH2_ERRORS = {"unsupported_grant_type": "unsupported_grant_type", "missing_token": "invalid_request"}
OAUTH2_STATUS_ERRORS = {
    401: "invalid_grant",
    403: "invalid_grant",
    429: "temporarily_unavailable",
    500: "server_error",
    502: "server_error",
    503: "temporarily_unavailable",
}


def error_code_for(status: int) -> str:
    """The `error` code of an answer with this status and no code of its own."""
    return STATUS_ERRORS.get(status) or ("internal_error" if status >= 500 else "malformed_request")


class AppError(Exception):
    code = 400
    error = "malformed_request"

    def __init__(
        self,
        message: str,
        errors: dict | None = None,
        headers: dict | None = None,
        *,
        error: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        if error is not None:
            self.error = error


class BadRequest(AppError):
    code = 400
    error = "malformed_request"


class Unauthorized(AppError):
    code = 401
    error = "invalid_token"


class Forbidden(AppError):
    code = 403
    error = "forbidden"


class NotFound(AppError):
    code = 404
    error = "not_found"


class Conflict(AppError):
    code = 409
    error = "conflict"


class Unprocessable(AppError):
    code = 422
    error = "validation_failed"


class TooManyRequests(AppError):
    code = 429
    error = "rate_limited"

    def __init__(self, message: str, retry_after: int, *, error: str | None = None):
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after)))}, error=error)


class UpstreamError(AppError):
    code = 502
    error = "upstream_failed"


class ServiceUnavailable(AppError):
    """A dependency is down: says when a retry is worth it (the pools reconnect within seconds)."""

    code = 503
    error = "service_unavailable"

    def __init__(self, message: str, errors: dict | None = None, headers: dict | None = None):
        super().__init__(message, errors, {**RETRY_SOON, **(headers or {})})


def oauth2_errors(view: type) -> type:
    """Class decorator for an OAuth2 token endpoint's view: its errors carry RFC 6749 5.2's codes."""
    view.oauth2_errors = True  # type: ignore[attr-defined]
    return view


def _is_token_endpoint() -> bool:
    if not has_request_context() or request.endpoint is None:
        return False
    view = current_app.view_functions.get(request.endpoint)
    return bool(getattr(getattr(view, "view_class", None), "oauth2_errors", False))


def field_error(field: str, message: str, location: str = "json") -> Unprocessable:
    """A 422 naming one field, in flask-smorest's `errors` layout."""
    return Unprocessable(message, errors={location: {field: [message]}})


class ErrorSchema(Schema):
    """The error shape, for the OpenAPI document (`error_response()` builds the bodies)."""

    code = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    status = fields.String(required=True, metadata={"description": "The status's name: `Not Found`."})
    error = fields.String(
        required=True,
        validate=validate.OneOf(sorted(ERROR_CODES)),
        metadata={
            "description": "What kind of error, for programs: a stable snake_case code (README, "
            "Error codes). The token endpoints answer RFC 6749's codes."
        },
    )
    error_description = fields.String(
        metadata={"description": "On the token endpoints only (RFC 6749 5.2): the `message`."}
    )
    message = fields.String(required=True, metadata={"description": "What went wrong, for people."})
    errors = fields.Dict(
        keys=fields.String(),
        metadata={
            "description": "Field errors, by location then field, where there are any: "
            '`{"json": {"price": ["Must be greater than or equal to 0."]}}`.'
        },
    )


def error_response(
    code: int,
    message: str | None = None,
    errors: dict | None = None,
    headers=None,
    error: str | None = None,
):
    status = HTTPStatus(code)
    error = error or error_code_for(code)
    message = message or status.description
    oauth2 = _is_token_endpoint()
    if oauth2:
        error = OAUTH2_ERRORS.get(error) or OAUTH2_STATUS_ERRORS.get(code) or "invalid_request"
    body = {"code": code, "status": status.phrase, "error": error, "message": message}
    if oauth2:
        body["error_description"] = message
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = code
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


# Clearer than Werkzeug's generic descriptions when the details are in `errors`.
FIELD_ERROR_MESSAGES = {
    400: "The request body is malformed; see errors.",
    422: "The request is invalid; see errors.",
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AppError)
    def handle_app_error(exc: AppError):
        return error_response(exc.code, exc.message, exc.errors, exc.headers, exc.error)

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException):
        # flask-smorest's abort() and webargs put field errors in exc.data.
        data = getattr(exc, "data", None) or {}
        errors = data.get("messages") or data.get("errors")
        message = (
            data.get("message") or (errors and FIELD_ERROR_MESSAGES.get(exc.code or 500)) or exc.description
        )
        headers = dict(data.get("headers") or {})
        if exc.code == 405 and exc.response is None:
            headers.update({k: v for k, v in exc.get_headers() if k == "Allow"})
        if exc.code == 429 and "Retry-After" not in headers:
            headers["Retry-After"] = str(getattr(exc, "retry_after", None) or 60)
        return error_response(exc.code or 500, message, errors, headers)

    @app.errorhandler(OperationalError)
    def handle_database_down(exc: OperationalError):
        log.error("database unavailable: %s", exc.__class__.__name__)
        return error_response(503, "The database is unavailable, try again later.", headers=RETRY_SOON)

    for redis_error in REDIS_ERRORS:

        @app.errorhandler(redis_error)
        def handle_redis_down(exc):
            log.error("redis unavailable: %s", exc.__class__.__name__)
            return error_response(503, "Redis is unavailable, try again later.", headers=RETRY_SOON)

    @app.errorhandler(DBAPIError)
    def handle_database_error(exc: DBAPIError):
        if exc.connection_invalidated:
            return error_response(503, "The database is unavailable, try again later.", headers=RETRY_SOON)
        log.exception("database error")
        return error_response(500, "Internal server error.")

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "Internal server error.")


# Stable kinds for the guard's answers (the `error` field of the contract's shape).
GUARD_ERROR_KINDS = {503: "service_unavailable", 500: "internal_error"}


def is_dependency_error(exc: BaseException) -> bool:
    """A database or Redis that is down or dropped the connection: a 503, not a bug."""
    if isinstance(exc, (OperationalError, *REDIS_ERRORS)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class ErrorGuard:
    """WSGI middleware right around Flask: an exception that escapes Flask's own handlers (a
    teardown function, such as the database session's rollback on a dead connection) becomes
    the contract's error shape instead of gunicorn's HTML 500.

    Flask calls `start_response` with the view's answer before its teardowns run, so the call
    is held here and passed on only once Flask has returned: an error after it replaces the
    answer cleanly (a second call with `exc_info` would do in gunicorn, but Werkzeug's test
    client raises on it). The dependency errors say 503 (retry soon); anything else is a 500, logged.
    """

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        held: list = []
        started: list = []
        request: list = []

        def hold(status, headers, exc_info=None):
            held[:] = [(status, headers, exc_info)]
            # Flask drops its request from the environ when its context ends; the observer
            # outside reads the URL rule from it, so it is put back for the deferred call.
            request[:] = [environ.get("werkzeug.request")]

            def write(data: bytes) -> None:  # the legacy write(): Flask never calls it
                if not started:
                    started.append(start_response(*held[0]))
                started[0](data)

            return write

        try:
            body = self.wsgi_app(environ, hold)
        except Exception as exc:
            if started:
                raise  # a body was written already: nothing left to replace
            if request:
                environ["werkzeug.request"] = request[0]
            return self._error(exc, start_response)
        if held and not started:
            environ["werkzeug.request"] = request[0]
            start_response(*held[0])
        return body

    @staticmethod
    def _error(exc: Exception, start_response) -> list[bytes]:
        if is_dependency_error(exc):
            code, message = 503, "A dependency is unavailable, try again later."
            log.error("dependency failed outside the view: %s", exc.__class__.__name__)
        else:
            code, message = 500, "Internal server error."
            log.exception("unhandled error outside the view")
        status = HTTPStatus(code)
        kind = GUARD_ERROR_KINDS[code]
        body = json.dumps({"code": code, "status": status.phrase, "error": kind, "message": message}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if code == 503:
            headers += list(RETRY_SOON.items())
        start_response(f"{code} {status.phrase}", headers)
        return [body]

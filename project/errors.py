"""Domain errors and the one JSON error shape.

Every error the API answers looks like
`{"code": 422, "status": "Unprocessable Entity", "message": "...", "errors": {...}}`.
Services raise the `AppError` subclasses below; routes never build error bodies by hand.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from flask import Flask, jsonify
from marshmallow import Schema, fields
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from project.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)


RETRY_SOON = {"Retry-After": "5"}


class AppError(Exception):
    code = 400

    def __init__(self, message: str, errors: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors
        self.headers = headers or {}


class BadRequest(AppError):
    code = 400


class Unauthorized(AppError):
    code = 401


class Forbidden(AppError):
    code = 403


class NotFound(AppError):
    code = 404


class Conflict(AppError):
    code = 409


class Unprocessable(AppError):
    code = 422


class TooManyRequests(AppError):
    code = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, headers={"Retry-After": str(max(1, int(retry_after)))})


class UpstreamError(AppError):
    code = 502


class ServiceUnavailable(AppError):
    """A dependency is down: says when a retry is worth it (the pools reconnect within seconds)."""

    code = 503

    def __init__(self, message: str, errors: dict | None = None, headers: dict | None = None):
        super().__init__(message, errors, {**RETRY_SOON, **(headers or {})})


def field_error(field: str, message: str, location: str = "json") -> Unprocessable:
    """A 422 naming one field, in flask-smorest's `errors` layout."""
    return Unprocessable(message, errors={location: {field: [message]}})


class ErrorSchema(Schema):
    """The error shape, for the OpenAPI document (`error_response()` builds the bodies)."""

    code = fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    status = fields.String(required=True, metadata={"description": "The status's name: `Not Found`."})
    message = fields.String(required=True, metadata={"description": "What went wrong, for people."})
    errors = fields.Dict(
        keys=fields.String(),
        metadata={
            "description": "Field errors, by location then field, where there are any: "
            '`{"json": {"price": ["Must be greater than or equal to 0."]}}`.'
        },
    )


def error_response(code: int, message: str | None = None, errors: dict | None = None, headers=None):
    status = HTTPStatus(code)
    body = {"code": code, "status": status.phrase, "message": message or status.description}
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
        return error_response(exc.code, exc.message, exc.errors, exc.headers)

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

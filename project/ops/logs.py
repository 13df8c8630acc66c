"""Logging: JSON (LOG_FORMAT=json) or plain lines, each carrying the request id.

The request id comes from `X-Request-ID` when it is a sane token, else a new one; it is
echoed in the response and put on every log line of the request by a logging filter that
reads a context variable (so it works in any thread and outside Flask too: "-").
One access line per request (project/ops/observe.py): method, path without the query string,
status, duration.
Headers, bodies and query strings are never logged, so tokens and passwords stay out.
Timestamps are ISO 8601 in UTC with milliseconds (`2026-11-29T17:22:04.770Z`), in both
formats and in every process (gunicorn.conf.py uses these formatters for gunicorn's own lines).
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid
from datetime import UTC, datetime

from flask import Flask
from pythonjsonlogger.json import JsonFormatter

from project import tracing

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

access_log = logging.getLogger("access")
PLAIN_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s"
# With tracing on (project.tracing), lines also carry the trace id.
PLAIN_FORMAT_TRACED = "%(asctime)s %(levelname)s [%(request_id)s trace=%(trace_id)s] %(name)s: %(message)s"
JSON_FIELDS_TRACED = JSON_FIELDS + " %(trace_id)s"


def iso_time(created: float) -> str:
    """A log record's time: ISO 8601, UTC, milliseconds."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PlainFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return iso_time(record.created)


class JsonLineFormatter(JsonFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return iso_time(record.created)


JSON_RENAMES = {"asctime": "time", "levelname": "level", "name": "logger"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        if tracing.state.enabled:  # off, lines stay as they were (no trace_id field)
            record.trace_id = tracing.current_trace_id()
        return True


# What a secret looks like once formatted: a JWT, an Argon2 hash, a token in a link's query,
# a bearer credential. Production log lines are passed through these (RedactingFormatter).
SECRET_PATTERNS = (
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "[redacted token]"),
    (re.compile(r"\$argon2(?:id|i|d)\$[^\s\"',)]+"), "[redacted hash]"),
    (re.compile(r"([?&](?:token|access_token|refresh_token)=)[^&\s\"'<>]+"), r"\1[redacted]"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), r"\1[redacted]"),
)


def redact(line: str) -> str:
    for pattern, replacement in SECRET_PATTERNS:
        line = pattern.sub(replacement, line)
    return line


class RedactingFormatter(logging.Formatter):
    """Wraps a formatter and removes secrets from what it writes (production): a second line
    of defence behind "never log one" (no bodies, headers or query strings; SQL parameters
    hidden; no mail body), for whatever a library prints at DEBUG (SQLAlchemy result rows...)."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def build_handler(log_format: str, stream=None, redact_secrets: bool = False) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter: logging.Formatter
    traced = tracing.state.enabled
    if log_format == "json":
        formatter = JsonLineFormatter(
            JSON_FIELDS_TRACED if traced else JSON_FIELDS, rename_fields=JSON_RENAMES
        )
    else:
        formatter = PlainFormatter(PLAIN_FORMAT_TRACED if traced else PLAIN_FORMAT)
    if redact_secrets:
        formatter = RedactingFormatter(formatter)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    handler._app_handler = True  # type: ignore[attr-defined]  # ours: replaced, not stacked, per app
    return handler


def configure_logging(app: Flask) -> logging.Handler:
    """Install the one root handler (process-wide) and return it (app.extensions["log_handler"])."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_app_handler", False)]:
        root.removeHandler(old)
    handler = build_handler(
        (app.config.get("LOG_FORMAT") or "plain").lower(),
        redact_secrets=app.config.get("APP_ENV") == "production",
    )
    root.addHandler(handler)
    root.setLevel((app.config.get("LOG_LEVEL") or "INFO").upper())
    # Werkzeug's dev-server access lines duplicate ours.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.extensions["log_handler"] = handler
    return handler


def sane_request_id(value: object) -> str:
    """The caller's request id when it is a sane token, else a new one (HTTP and gRPC alike)."""
    return value if isinstance(value, str) and REQUEST_ID_PATTERN.match(value) else uuid.uuid4().hex

"""Headers every response gets (API.md, Conventions).

- `X-Content-Type-Options: nosniff` on every response.
- Every 401 says how to authenticate: `WWW-Authenticate: Bearer` (RFC 6750), unless the
  answer already names its scheme (the RQ dashboard's Basic).
- `Retry-After` only where it means something: 429 and 503. Flask-Limiter adds it to every
  response when its headers are on.

Registered before the extensions: Flask runs after-request hooks in reverse order, so this one
runs after Flask-Limiter's and sees the final headers.
"""

from __future__ import annotations

from flask import Flask, Response

RETRY_AFTER_CODES = (429, 503)


def set_security_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = "Bearer"
    if response.status_code not in RETRY_AFTER_CODES:
        response.headers.pop("Retry-After", None)
    return response


def register_security_headers(app: Flask) -> None:
    app.after_request(set_security_headers)

"""Headers every response gets (API.md, Conventions).

- `X-Content-Type-Options: nosniff` on every response.
- Every 401 says how to authenticate: `WWW-Authenticate: Bearer` (RFC 6750), unless the
  answer already names its scheme (the RQ dashboard's Basic).
- `Retry-After` only where it means something: 429 and 503. Flask-Limiter adds it to every
  response when its headers are on.

Applied to the WSGI status and header list as the response leaves the app (`SecurityHeaders`,
one layer of project/wsgi_stack.py), so after every Flask hook (Flask-Limiter's included) and to
the error guard's answers too: the final headers are the ones seen.
"""

from __future__ import annotations

RETRY_AFTER_CODES = (429, 503)


def secure_headers(status: int, headers: list[tuple[str, str]]) -> None:
    """Set the security headers in a WSGI header list, in place."""
    names = {name.lower() for name, _ in headers}
    drop_header(headers, "x-content-type-options", names)
    headers.append(("X-Content-Type-Options", "nosniff"))
    if status == 401 and "www-authenticate" not in names:
        headers.append(("WWW-Authenticate", "Bearer"))
    if status not in RETRY_AFTER_CODES:
        drop_header(headers, "retry-after", names)


def drop_header(headers: list[tuple[str, str]], name: str, names: set[str] | None = None) -> None:
    """Remove every `name` header (lower case) from a WSGI header list, in place; `names`: the
    list's lower-cased names, when the caller has them already."""
    if name in (names if names is not None else {n.lower() for n, _ in headers}):
        headers[:] = [(n, v) for n, v in headers if n.lower() != name]

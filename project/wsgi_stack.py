"""The WSGI middleware around Flask and their order, in one place (`wrap`).

Outermost -> innermost (a request goes down the list, its answer comes back up):

1. `ProxyFix`, only with `TRUSTED_PROXY_COUNT`: first, so every layer below sees the client's
   address, scheme and host, not the proxy's (rate limits, the login lockout, the access line).
2. `StripTrailingSlash`: `/api/v1/users/` answers as `/api/v1/users` without a redirect
   (API.md); before tracing and the observer, so they name the path Flask routes. Paths under
   a prefix a feature declares (`keep_trailing_slash`) pass as they are.
3. OpenTelemetry's request span, only when tracing is on (`tracing.instrument_app` wraps
   `app.wsgi_app` itself, and `tracing.stop` unwraps it).
4. The request observer a feature installs (`observe_requests`; ops: request id, access line,
   metrics): outside the two layers below, it sees the final status and headers, the error
   guard's answers included.
5. `SecurityHeaders` (the rules: project/security_headers.py): after every Flask hook
   (Flask-Limiter's included), and on the error guard's answers too.
6. `ErrorGuard` (project/errors.py): right around Flask, so whatever escapes Flask (a teardown's
   error) leaves as the contract's error shape, never as gunicorn's HTML page.

Features fill the hooks in their `init_app` (or, for ops, `register_observability`); this
module imports no feature (scripts/check_imports.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from project import tracing
from project.errors import ErrorGuard
from project.security_headers import secure_headers

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]
Middleware = Callable[[WSGIApp], WSGIApp]


@dataclass
class StackHooks:
    """What features add to the stack, per app (`app.extensions["wsgi_stack"]`)."""

    observers: list[Middleware] = field(default_factory=list)
    keep_trailing_slash: list[str] = field(default_factory=list)


def hooks(app: Flask) -> StackHooks:
    return app.extensions.setdefault("wsgi_stack", StackHooks())


def observe_requests(app: Flask, middleware: Middleware) -> None:
    """Hook: a middleware that watches every request, at layer 4 (ops installs its observer)."""
    hooks(app).observers.append(middleware)


def keep_trailing_slash(app: Flask, prefix: str) -> None:
    """Hook: paths starting with `prefix` keep their trailing slash (an app mounted there
    routes its own slashes: the RQ dashboard's index is `/rq/`)."""
    hooks(app).keep_trailing_slash.append(prefix)


def wrap(app: Flask) -> None:
    """Put the stack around Flask, in the module docstring's order (create_app calls this last,
    once every feature has filled its hooks)."""
    filled = hooks(app)
    hops = app.config["TRUSTED_PROXY_COUNT"]
    outermost_first: list[Middleware] = [
        *([partial(ProxyFix, x_for=hops, x_proto=hops, x_host=hops)] if hops else []),
        partial(StripTrailingSlash, keep=tuple(filled.keep_trailing_slash)),
        partial(_traced, app),
        *filled.observers,
        SecurityHeaders,
        ErrorGuard,
    ]
    for layer in reversed(outermost_first):
        # Wrapping wsgi_app is Flask's documented way to add middleware; its typing forbids it.
        app.wsgi_app = layer(app.wsgi_app)  # type: ignore[method-assign]


def _traced(app: Flask, inner: WSGIApp) -> WSGIApp:
    """OpenTelemetry's Flask instrumentation wraps `app.wsgi_app` in place (when tracing is on;
    it also traces the app's engines)."""
    app.wsgi_app = inner  # type: ignore[method-assign, assignment]
    tracing.instrument_app(app)
    return app.wsgi_app


class StripTrailingSlash:
    """`/api/v1/users/` answers as `/api/v1/users`, without a redirect (API.md); paths under a
    prefix in `keep` pass as they are."""

    def __init__(self, wsgi_app: WSGIApp, keep: tuple[str, ...] = ()) -> None:
        self.wsgi_app = wsgi_app
        self.keep = keep

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if len(path) > 1 and path.endswith("/") and not path.startswith(self.keep):
            environ["PATH_INFO"] = path.rstrip("/") or "/"
        return self.wsgi_app(environ, start_response)


class SecurityHeaders:
    """`secure_headers` on every answer's status and header list."""

    def __init__(self, wsgi_app: WSGIApp) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        def secured(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            secure_headers(int(status[:3]), headers)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, secured)

"""Flask's signed-cookie session, opened only when a request carries its cookie."""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class CookieSessionOnDemand(SecureCookieSessionInterface):
    """Flask's signed-cookie session, unpacked only when the request carries the cookie: the
    API authenticates with bearer tokens, and building the signer costs every request."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if "HTTP_COOKIE" not in request.environ or self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)

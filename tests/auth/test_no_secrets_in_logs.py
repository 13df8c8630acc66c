"""The whole account flow in production mode with every logger at DEBUG (SQLAlchemy and RQ
included): no token, password or password hash it handled appears in any log line."""

from __future__ import annotations

import hashlib
import io
import logging

import pytest

from project.extensions import db
from project.users.models import User

PASSWORD = "Sup3r$ecret!Fl0w"
NEW_PASSWORD = "N3w!Secret#Fl0w"
EMAIL = "flow@example.com"
# aiosmtpd is the test's mail server, not the app: it prints what it receives at DEBUG.
NOT_THE_APP = ("mail.log", "aiosmtpd")


@pytest.fixture
def debug_log(app):
    """Every logger at DEBUG, written through the app's own production handler into a buffer."""
    handler = app.extensions["log_handler"]
    buffer = io.StringIO()
    old_stream = handler.setStream(buffer)
    loggers = [
        logging.getLogger(),
        *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict)),
    ]
    levels = {logger: logger.level for logger in loggers}
    for logger in loggers:
        logger.setLevel(logging.WARNING if logger.name.startswith(NOT_THE_APP) else logging.DEBUG)
    yield buffer
    for logger, level in levels.items():
        logger.setLevel(level)
    handler.setStream(old_stream)


@pytest.mark.app_config(
    APP_ENV="production",
    SECRET_KEY="s" * 40,
    JWT_SECRET_KEY="j" * 40,
    MAIL_SERVER="127.0.0.1",
    LOG_LEVEL="DEBUG",
    LOG_FORMAT="json",
)
def test_the_account_flow_logs_no_secret(app, client, smtp_server, run_jobs, debug_log):
    secrets: dict[str, str] = {"password": PASSWORD, "new password": NEW_PASSWORD}

    assert (
        client.post(
            "/api/v1/auth/register", json={"email": EMAIL, "username": "flow", "password": PASSWORD}
        ).status_code
        == 201
    )
    run_jobs(("email",))
    secrets["verify token"] = smtp_server.token_for(EMAIL, "confirm")
    assert client.post("/api/v1/auth/verify", json={"token": secrets["verify token"]}).status_code == 200

    login = client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}).get_json()
    secrets["access token"], secrets["refresh token"] = login["access_token"], login["refresh_token"]
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}).get_json()
    secrets["refreshed access token"] = refreshed["access_token"]
    secrets["refreshed refresh token"] = refreshed["refresh_token"]
    headers = {"Authorization": f"Bearer {refreshed['access_token']}"}
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200
    with app.app_context():
        secrets["password hash"] = db.session.query(User).filter_by(username="flow").one().password_hash

    assert client.post("/api/v1/auth/password/forgot", json={"email": EMAIL}).status_code == 202
    run_jobs(("email",))
    secrets["reset token"] = smtp_server.token_for(EMAIL, "reset")
    reset = client.post(
        "/api/v1/auth/password/reset", json={"token": secrets["reset token"], "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 204
    final = client.post("/api/v1/auth/login", json={"username": "flow", "password": NEW_PASSWORD}).get_json()
    secrets["last access token"], secrets["last refresh token"] = (
        final["access_token"],
        final["refresh_token"],
    )
    # A failed login, a 401 and a validation error log too.
    client.post("/api/v1/auth/login", json={"username": "flow", "password": PASSWORD})
    client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {secrets['access token']}"})
    client.post("/api/v1/auth/register", json={"email": EMAIL, "username": "x", "password": NEW_PASSWORD})
    with app.app_context():
        secrets["new password hash"] = db.session.query(User).filter_by(username="flow").one().password_hash
    for name in ("verify token", "reset token"):
        secrets[f"{name} digest"] = hashlib.sha256(secrets[name].encode()).hexdigest()

    log = debug_log.getvalue()
    # The capture really was at DEBUG, through every layer the flow crossed.
    assert '"logger": "sqlalchemy.engine' in log, "no SQL logged: the capture is not at DEBUG"
    assert '"logger": "rq.worker"' in log and '"logger": "access"' in log and '"level": "DEBUG"' in log
    leaked = [name for name, value in secrets.items() if value in log]
    assert not leaked, f"found in the log: {leaked}"
    # Nor any part of a JWT or an Argon2 hash, nor a link's token.
    assert "$argon2" not in log and "token=" not in log.replace("token=[redacted]", "")

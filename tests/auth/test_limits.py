"""Login lockout, flask-limiter limits, email job retries, and inputs that must never 500."""

from datetime import timedelta

import pytest
from rq import Queue

from project.auth.models import LoginFailure
from project.database import utcnow
from project.extensions import db, redis_client

API = "/api/v1/auth"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def bad_login(client, name, ip="10.0.0.1", key="email"):
    return client.post(
        f"{API}/login", json={key: name, "password": "Wr0ng!pass"}, environ_base={"REMOTE_ADDR": ip}
    )


# --- lockout ---------------------------------------------------------------------------


def test_five_failures_lock_the_account_for_that_address(client, user):
    for _ in range(5):
        assert bad_login(client, user["email"]).status_code == 401
    right = {"email": user["email"], "password": user["password"]}
    locked = client.post(f"{API}/login", json=right, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert locked.status_code == 429
    assert 800 < int(locked.headers["Retry-After"]) <= 900
    assert locked.get_json()["code"] == 429
    # The lockout is per name as sent: the username is a counter of its own (else a 429 would
    # tell which username goes with the email); from another address it is not locked.
    assert bad_login(client, user["username"], key="username").status_code == 401
    other_ip = client.post(f"{API}/login", json=right, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert other_ip.status_code == 200


def test_lockout_applies_to_unknown_accounts_too(client):
    for _ in range(5):
        assert bad_login(client, "ghost@example.com").status_code == 401
    response = bad_login(client, "ghost@example.com")
    assert response.status_code == 429
    assert "Retry-After" in response.headers


def test_lockout_ends_after_the_window_and_success_clears_failures(client, app, user):
    for _ in range(5):
        bad_login(client, user["email"])
    with app.app_context():
        db.session.execute(db.update(LoginFailure).values(failed_at=utcnow() - timedelta(minutes=16)))
        db.session.commit()
    right = {"email": user["email"], "password": user["password"]}
    assert (
        client.post(f"{API}/login", json=right, environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 200
    )
    with app.app_context():
        assert db.session.query(LoginFailure).count() == 0


def test_four_failures_then_success_is_not_locked(client, user):
    for _ in range(4):
        bad_login(client, user["email"])
    right = {"email": user["email"], "password": user["password"]}
    assert (
        client.post(f"{API}/login", json=right, environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 200
    )


# --- flask-limiter ---------------------------------------------------------------------


@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATE_LIMIT_AUTH="3/minute")
def test_auth_rate_limit_is_429_with_retry_after(client):
    for _ in range(3):
        assert client.post(f"{API}/password/forgot", json={"email": "a@example.com"}).status_code == 202
    response = client.post(f"{API}/password/forgot", json={"email": "a@example.com"})
    assert response.status_code == 429
    body = response.get_json()
    assert body["code"] == 429 and body["status"] == "Too Many Requests"
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATE_LIMIT_AUTH="5/minute")
def test_auth_rate_limit_follows_each_apps_setting(client):
    for _ in range(5):
        assert client.post(f"{API}/password/forgot", json={"email": "a@example.com"}).status_code == 202
    assert client.post(f"{API}/password/forgot", json={"email": "a@example.com"}).status_code == 429


@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATE_LIMIT_DEFAULT="2/minute", RATE_LIMIT_AUTH="50/minute")
def test_default_rate_limit_applies_app_wide(client, user_headers):
    for _ in range(2):
        assert client.get("/api/v1/users/me", headers=user_headers).status_code == 200
    response = client.get("/api/v1/users/me", headers=user_headers)
    assert response.status_code == 429
    assert "Retry-After" in response.headers


def test_rate_limits_are_off_when_disabled(client):
    for _ in range(15):
        assert client.post(f"{API}/password/forgot", json={"email": "a@example.com"}).status_code == 202


# --- email jobs ------------------------------------------------------------------------


def test_email_goes_to_the_email_queue_with_retries(client, app):
    client.post(
        f"{API}/register", json={"email": "q@example.com", "username": "qqq", "password": "Sup3r$ecret!"}
    )
    with app.app_context():
        queue = Queue("email", connection=redis_client.client)
        jobs = queue.get_jobs()
        assert len(jobs) == 1
        job = jobs[0]
        assert job.func_name == "project.auth.emails.send_verification_email"
        assert job.retries_left and job.retries_left > 0
        # The job carries the user id only: no token or secret sits in Redis.
        assert all(isinstance(arg, int) for arg in job.args)


def test_failed_smtp_send_raises_and_is_scheduled_for_retry(client, app, run_jobs, closed_port):
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=closed_port)  # nothing listens there
    client.post(
        f"{API}/register", json={"email": "r@example.com", "username": "rrr", "password": "Sup3r$ecret!"}
    )
    with app.app_context():
        job = Queue("email", connection=redis_client.client).get_jobs()[0]
        retries = job.retries_left
    run_jobs(("email",))
    with app.app_context():
        job.refresh()
        assert job.get_status() == "scheduled"
        assert job.retries_left == retries - 1
        assert job.id in Queue("email", connection=redis_client.client).scheduled_job_registry.get_job_ids()

        from project.auth.emails import send_verification_email
        from project.users.models import User

        user_id = db.session.scalar(db.select(User.id))
        with pytest.raises(OSError):
            send_verification_email(user_id)


def test_without_mail_server_the_mail_is_logged(client, app, run_jobs, caplog):
    caplog.set_level("INFO", logger="project.mail")
    client.post(
        f"{API}/register", json={"email": "l@example.com", "username": "lll", "password": "Sup3r$ecret!"}
    )
    run_jobs(("email",))
    assert "verify-email?token=" in caplog.text
    assert "l@example.com" in caplog.text


# --- no 500 for anything a client can send ---------------------------------------------

GARBAGE_BODIES = [
    b"",
    b"null",
    b"[]",
    b"12",
    b'"x"',
    b"{",
    b'{"email": {"a": 1}}',
    b'{"token": 123456789012345678901234567890}',
    '{"email": "\u00e9\u0000@x"}'.encode(),
    b"\xff\xfe\x00",
]


@pytest.mark.parametrize(
    "path",
    [
        "/register",
        "/login",
        "/refresh",
        "/verify",
        "/password/forgot",
        "/password/reset",
        "/logout",
        "/verify/resend",
    ],
)
def test_garbage_never_500(client, user_headers, path):
    for raw in GARBAGE_BODIES:
        for headers in ({}, user_headers, bearer("garbage.token.here"), {"Authorization": "Bearer"}):
            response = client.post(f"{API}{path}", data=raw, content_type="application/json", headers=headers)
            assert response.status_code < 500, (path, raw, response.get_json())
            assert response.is_json


def test_garbage_form_and_tokens_never_500(client):
    responses = [
        client.post(f"{API}/login", data={"username": "", "password": ""}),
        client.post(f"{API}/login", data=b"\xff\xfe=\x00", content_type="application/x-www-form-urlencoded"),
        client.post(f"{API}/login", data="password=x", content_type="text/plain"),
        client.get("/api/v1/users/me", headers=bearer("\u00e9" * 10)),
        client.get("/api/v1/users/me", headers=bearer("a" * 10000)),
        client.post(f"{API}/verify", json={"token": "\u0000\ud800"}),
    ]
    assert all(r.status_code < 500 for r in responses), [r.status_code for r in responses]

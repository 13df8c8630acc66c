"""Each auth route: success and every failure status."""

from datetime import timedelta

import pytest
import requests

from project.auth.models import AuthSession, UserToken
from project.database import utcnow
from project.extensions import db
from project.users.models import User

PASSWORD = "Sup3r$ecret!"
API = "/api/v1/auth"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def register(client, email="bob@example.com", username="bob", password=PASSWORD, **extra):
    return client.post(
        f"{API}/register", json={"email": email, "username": username, "password": password, **extra}
    )


# --- register --------------------------------------------------------------------------


def test_register_creates_a_plain_unverified_user(client, app):
    response = register(client)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "email", "username", "role", "is_active", "is_verified", "created_at"}
    assert body["role"] == "user" and body["is_verified"] is False
    assert body["created_at"].endswith("+00:00")


def test_register_never_accepts_a_role(client, app):
    response = register(client, role="admin")
    assert response.status_code == 422
    assert "role" in response.get_json()["errors"]["json"]
    with app.app_context():
        assert db.session.query(User).count() == 0


@pytest.mark.parametrize(
    ("email", "username"),
    [("BOB@example.com", "other"), ("other@example.com", "bob"), ("other@example.com", "BOB")],
)
def test_register_taken_email_or_username_is_409(client, email, username):
    assert register(client).status_code == 201
    response = register(client, email=email, username=username)
    assert response.status_code == 409
    assert response.get_json()["code"] == 409


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Sh0rt!", "8 characters"),
        ("alllower1!", "upper-case"),
        ("ALLUPPER1!", "lower-case"),
        ("NoDigits!!", "digit"),
        ("NoSymbol11", "symbol"),
    ],
)
def test_register_password_policy_names_the_rule(client, password, rule):
    response = register(client, password=password)
    assert response.status_code == 422
    body = response.get_json()
    assert rule in body["message"]
    assert "password" in body["errors"]["json"]


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "not-an-email", "username": "bob", "password": PASSWORD},
        {"email": "bob@example.com", "username": "b", "password": PASSWORD},
        {"email": "bob@example.com", "username": "bad name!", "password": PASSWORD},
        {"email": "bob@example.com", "username": "bob"},
        {"email": 12, "username": ["x"], "password": None},
        {"email": "bob@example.com", "username": "bob", "password": "A1!" + "a" * 2000},
    ],
)
def test_register_invalid_body_is_422(client, payload):
    assert client.post(f"{API}/register", json=payload).status_code == 422


def test_register_malformed_json_is_400(client):
    response = client.post(f"{API}/register", data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["code"] == 400


# --- login -----------------------------------------------------------------------------


def test_login_by_username_or_email_json(client, user):
    for body in (
        {"username": user["username"], "password": user["password"]},
        {"email": user["email"].upper(), "password": user["password"]},
    ):
        response = client.post(f"{API}/login", json=body)
        assert response.status_code == 200
        assert set(response.get_json()) == {"access_token", "refresh_token", "token_type", "expires_in"}


def test_login_form_accepts_and_ignores_oauth2_client_fields(client, user):
    form = {
        "username": user["email"],
        "password": user["password"],
        "grant_type": "password",
        "scope": "read write",
        "client_id": "web",
        "client_secret": "s3cret",
    }
    response = client.post(f"{API}/login", data=form)
    assert response.status_code == 200
    assert response.get_json()["token_type"] == "bearer"


def test_login_form_unknown_field_is_422(client, user):
    response = client.post(
        f"{API}/login", data={"username": user["email"], "password": user["password"], "x": "1"}
    )
    assert response.status_code == 422
    assert "x" in response.get_json()["errors"]["form"]


def test_login_unknown_user_and_wrong_password_get_the_same_401(client, user):
    wrong = client.post(f"{API}/login", json={"email": user["email"], "password": "Wr0ng!pass"})
    unknown = client.post(f"{API}/login", json={"email": "ghost@example.com", "password": "Wr0ng!pass"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()


def test_login_deactivated_is_403_only_with_the_right_password(client, make_user):
    inactive = make_user(is_active=False)
    assert (
        client.post(f"{API}/login", json={"email": inactive["email"], "password": "Wr0ng!pass"}).status_code
        == 401
    )
    response = client.post(
        f"{API}/login", json={"email": inactive["email"], "password": inactive["password"]}
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"password": "x"},
        {"email": "a@b.c"},
        {"email": "a@b.c", "password": "x", "role": "admin"},
        [1, 2],
        "text",
    ],
)
def test_login_invalid_json_is_422(client, body):
    assert client.post(f"{API}/login", json=body).status_code == 422


def test_login_malformed_json_is_400(client):
    assert client.post(f"{API}/login", data="{", content_type="application/json").status_code == 400


def test_login_rehashes_when_the_hash_parameters_changed(client, app, make_user):
    from argon2 import PasswordHasher

    user = make_user()
    old_hash = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1).hash(user["password"])
    with app.app_context():
        db.session.get(User, user["id"]).password_hash = old_hash
        db.session.commit()
    assert (
        client.post(f"{API}/login", json={"email": user["email"], "password": user["password"]}).status_code
        == 200
    )
    with app.app_context():
        new_hash = db.session.get(User, user["id"]).password_hash
    assert new_hash != old_hash and "t=1" in new_hash
    assert (
        client.post(f"{API}/login", json={"email": user["email"], "password": user["password"]}).status_code
        == 200
    )


# --- refresh ---------------------------------------------------------------------------


def test_refresh_by_header_and_by_body(client, user, log_in):
    pair = log_in(user["email"], user["password"])
    first = client.post(f"{API}/refresh", headers=bearer(pair["refresh_token"]))
    assert first.status_code == 200
    second = client.post(f"{API}/refresh", json={"refresh_token": first.get_json()["refresh_token"]})
    assert second.status_code == 200
    assert (
        client.get("/api/v1/users/me", headers=bearer(second.get_json()["access_token"])).status_code == 200
    )


def test_refresh_never_takes_an_access_token_and_a_refresh_token_is_no_access_token(client, user, log_in):
    pair = log_in(user["email"], user["password"])
    assert client.post(f"{API}/refresh", headers=bearer(pair["access_token"])).status_code == 401
    assert client.post(f"{API}/refresh", json={"refresh_token": pair["access_token"]}).status_code == 401
    assert client.get("/api/v1/users/me", headers=bearer(pair["refresh_token"])).status_code == 401


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 4000, "eyJhbGciOiJub25lIn0.e30."])
def test_refresh_garbage_is_401(client, token):
    assert client.post(f"{API}/refresh", json={"refresh_token": token}).status_code == 401
    assert client.post(f"{API}/refresh", headers=bearer(token)).status_code == 401


def test_refresh_without_token_is_401_and_unknown_field_422(client):
    assert client.post(f"{API}/refresh").status_code == 401
    assert client.post(f"{API}/refresh", json={"token": "x"}).status_code == 422


def test_refresh_expired_token_is_401(client, app, user, log_in):
    pair = log_in(user["email"], user["password"])
    with app.app_context():
        from flask_jwt_extended import create_refresh_token

        expired = create_refresh_token(identity=str(user["id"]), expires_delta=timedelta(seconds=-5))
    response = client.post(f"{API}/refresh", headers=bearer(expired))
    assert response.status_code == 401
    assert "expired" in response.get_json()["message"].lower()
    assert client.post(f"{API}/refresh", headers=bearer(pair["refresh_token"])).status_code == 200


def test_refresh_by_the_oauth2_form_grant(client, user, log_in):
    """As an OAuth2 client (authlib, requests-oauthlib) sends it: a form, client credentials in
    HTTP Basic; the old token is spent, and presenting it again ends the session."""
    pair = log_in(user["email"], user["password"])
    form = {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"], "client_id": "cli"}
    basic = {"Authorization": "Basic Y2xpOnNlY3JldA=="}  # cli:secret, ignored

    response = client.post(f"{API}/refresh", data=form, headers=basic)

    assert response.status_code == 200
    fresh = response.get_json()
    assert fresh["token_type"] == "bearer" and fresh["refresh_token"] != pair["refresh_token"]
    assert client.get("/api/v1/users/me", headers=bearer(fresh["access_token"])).status_code == 200
    reused = client.post(f"{API}/refresh", data=form)
    assert reused.status_code == 401
    assert (
        client.post(f"{API}/refresh", data={**form, "refresh_token": fresh["refresh_token"]}).status_code
        == 401
    )
    assert client.get("/api/v1/users/me", headers=bearer(fresh["access_token"])).status_code == 401


def test_a_standard_oauth2_client_logs_in_and_refreshes(live_server, user):
    """authlib, over HTTP: the password grant at /auth/login, the refresh grant at /auth/refresh."""
    from authlib.integrations.requests_client import OAuth2Session

    oauth = OAuth2Session(client_id="docs")
    token = oauth.fetch_token(f"{live_server}{API}/login", username=user["email"], password=user["password"])
    assert oauth.get(f"{live_server}/api/v1/users/me").json()["id"] == user["id"]

    refreshed = oauth.refresh_token(f"{live_server}{API}/refresh")

    assert refreshed["refresh_token"] != token["refresh_token"]
    assert refreshed["access_token"] != token["access_token"]
    assert oauth.get(f"{live_server}/api/v1/users/me").status_code == 200
    spent = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    assert requests.post(f"{live_server}{API}/refresh", data=spent, timeout=10).status_code == 401
    assert oauth.get(f"{live_server}/api/v1/users/me").status_code == 401  # reuse ended the session


def test_the_refresh_form_never_takes_an_access_token(client, user, log_in):
    pair = log_in(user["email"], user["password"])
    form = {"grant_type": "refresh_token", "refresh_token": pair["access_token"]}
    response = client.post(f"{API}/refresh", data=form)
    assert response.status_code == 401
    assert response.get_json()["message"] == "A refresh token is required."
    assert client.post(f"{API}/refresh", headers=bearer(pair["refresh_token"])).status_code == 200


@pytest.mark.parametrize(
    "form, field",
    [
        ({"refresh_token": "x"}, "grant_type"),
        ({"grant_type": "password", "refresh_token": "x"}, "grant_type"),
        ({"grant_type": "refresh_token"}, "refresh_token"),
        ({"grant_type": "refresh_token", "refresh_token": "x", "extra": "1"}, "extra"),
    ],
)
def test_a_bad_refresh_form_is_422_and_spends_nothing(client, user, log_in, form, field):
    pair = log_in(user["email"], user["password"])
    response = client.post(f"{API}/refresh", data=form, headers=bearer(pair["refresh_token"]))
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["form"]
    assert client.post(f"{API}/refresh", headers=bearer(pair["refresh_token"])).status_code == 200


def test_login_without_a_body_is_422_naming_the_fields(client):
    response = client.post(f"{API}/login")
    assert response.status_code == 422
    assert "password" in response.get_json()["errors"]["json"]


# --- logout ----------------------------------------------------------------------------


def test_logout_with_refresh_token_revokes_both_sessions(client, user, log_in):
    one = log_in(user["email"], user["password"])
    two = log_in(user["email"], user["password"])
    response = client.post(
        f"{API}/logout", headers=bearer(one["access_token"]), json={"refresh_token": two["refresh_token"]}
    )
    assert response.status_code == 204
    assert client.get("/api/v1/users/me", headers=bearer(one["access_token"])).status_code == 401
    assert client.post(f"{API}/refresh", headers=bearer(one["refresh_token"])).status_code == 401
    assert client.get("/api/v1/users/me", headers=bearer(two["access_token"])).status_code == 401


def test_logout_ignores_another_users_refresh_token(client, user, make_user, log_in):
    other = make_user()
    mine = log_in(user["email"], user["password"])
    theirs = log_in(other["email"], other["password"])
    client.post(
        f"{API}/logout", headers=bearer(mine["access_token"]), json={"refresh_token": theirs["refresh_token"]}
    )
    assert client.get("/api/v1/users/me", headers=bearer(theirs["access_token"])).status_code == 200


def test_logout_needs_a_token(client):
    assert client.post(f"{API}/logout").status_code == 401
    assert client.post(f"{API}/logout", headers={"Authorization": "Basic abc"}).status_code == 401


def test_logout_unknown_field_is_422(client, user_headers):
    assert client.post(f"{API}/logout", headers=user_headers, json={"nope": 1}).status_code == 422


# --- verify ----------------------------------------------------------------------------


def test_verify_bad_foreign_or_used_token_is_400(client, app, make_user):
    from project.auth.tokens import VERIFY, issue_token

    user = make_user(is_verified=False)
    with app.app_context():
        token = issue_token(user["id"], VERIFY, timedelta(hours=1), user["email"])
        reset_token = issue_token(user["id"], "reset", timedelta(hours=1), user["email"])
        db.session.commit()
    assert client.post(f"{API}/verify", json={"token": "nope"}).status_code == 400
    # A reset token is no verification token.
    assert client.post(f"{API}/verify", json={"token": reset_token}).status_code == 400
    assert client.post(f"{API}/verify", json={"token": token}).status_code == 200
    assert client.post(f"{API}/verify", json={"token": token}).status_code == 400
    assert client.post(f"{API}/verify", json={}).status_code == 422
    assert client.post(f"{API}/verify", json={"token": "x" * 600}).status_code == 422


def test_verify_expired_token_is_400(client, app, make_user):
    from project.auth.tokens import VERIFY, issue_token

    user = make_user(is_verified=False)
    with app.app_context():
        token = issue_token(user["id"], VERIFY, timedelta(hours=1), user["email"])
        db.session.execute(db.update(UserToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert client.post(f"{API}/verify", json={"token": token}).status_code == 400


def test_resend_sends_a_new_link_and_retires_the_old(client, make_user, auth_headers, smtp_server, run_jobs):
    user = make_user(is_verified=False)
    headers = auth_headers(user)
    assert client.post(f"{API}/verify/resend", headers=headers).status_code == 202
    run_jobs(("email",))
    first = smtp_server.token_for(user["email"], "confirm")
    assert client.post(f"{API}/verify/resend", headers=headers).status_code == 202
    run_jobs(("email",))
    second = smtp_server.token_for(user["email"], "confirm")
    assert first != second
    assert client.post(f"{API}/verify", json={"token": first}).status_code == 400
    assert client.post(f"{API}/verify", json={"token": second}).status_code == 200


def test_resend_needs_auth_and_sends_nothing_when_verified(client, user_headers, smtp_server, run_jobs):
    assert client.post(f"{API}/verify/resend").status_code == 401
    assert client.post(f"{API}/verify/resend", headers=user_headers).status_code == 202
    run_jobs(("email",))
    assert smtp_server.messages == []


# --- forgot / reset password -----------------------------------------------------------


def test_forgot_password_same_answer_whether_or_not_the_account_exists(client, user, smtp_server, run_jobs):
    known = client.post(f"{API}/password/forgot", json={"email": user["email"]})
    unknown = client.post(f"{API}/password/forgot", json={"email": "ghost@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.get_json() == unknown.get_json()
    run_jobs(("email",))
    assert [m["To"] for m in smtp_server.messages] == [user["email"]]
    assert client.post(f"{API}/password/forgot", json={"email": "nope"}).status_code == 422


@pytest.mark.app_config(REDIS_URL=None)
def test_without_redis_forgot_password_sends_the_link_inline(client, user, smtp_server):
    """The reset request is queued by its dotted path (auth/jobs.py): inline, it runs all the same."""
    assert client.post(f"{API}/password/forgot", json={"email": user["email"]}).status_code == 202
    assert [m["To"] for m in smtp_server.messages] == [user["email"]]


def test_reset_password_kills_old_tokens_and_is_single_use(client, user, log_in, smtp_server, run_jobs):
    old = log_in(user["email"], user["password"])
    client.post(f"{API}/password/forgot", json={"email": user["email"]})
    run_jobs(("email",))
    token = smtp_server.token_for(user["email"], "reset")
    mail_text = smtp_server.to(user["email"])[-1].get_body(preferencelist=("plain",)).get_content()
    assert "http://localhost:5000/reset-password?token=" in mail_text

    weak = client.post(f"{API}/password/reset", json={"token": token, "new_password": "weak"})
    assert weak.status_code == 422
    assert "new_password" in weak.get_json()["errors"]["json"]

    new_password = "N3w!Password"
    assert (
        client.post(f"{API}/password/reset", json={"token": token, "new_password": new_password}).status_code
        == 204
    )
    assert client.get("/api/v1/users/me", headers=bearer(old["access_token"])).status_code == 401
    assert client.post(f"{API}/refresh", headers=bearer(old["refresh_token"])).status_code == 401
    again = client.post(f"{API}/password/reset", json={"token": token, "new_password": "An0ther!Pass"})
    assert again.status_code == 400
    assert (
        client.post(f"{API}/login", json={"email": user["email"], "password": user["password"]}).status_code
        == 401
    )
    log_in(user["email"], new_password)


def test_reset_password_bad_token_is_400_and_bad_body_422(client):
    assert (
        client.post(
            f"{API}/password/reset", json={"token": "nope", "new_password": "N3w!Password"}
        ).status_code
        == 400
    )
    assert client.post(f"{API}/password/reset", json={"token": "nope"}).status_code == 422
    assert (
        client.post(
            f"{API}/password/reset", json={"token": "x", "new_password": "N3w!Password", "a": 1}
        ).status_code
        == 422
    )


def test_a_newer_reset_link_retires_the_older(client, user, smtp_server, run_jobs):
    client.post(f"{API}/password/forgot", json={"email": user["email"]})
    run_jobs(("email",))
    first = smtp_server.token_for(user["email"], "reset")
    client.post(f"{API}/password/forgot", json={"email": user["email"]})
    run_jobs(("email",))
    second = smtp_server.token_for(user["email"], "reset")
    assert (
        client.post(
            f"{API}/password/reset", json={"token": first, "new_password": "N3w!Password"}
        ).status_code
        == 400
    )
    assert (
        client.post(
            f"{API}/password/reset", json={"token": second, "new_password": "N3w!Password"}
        ).status_code
        == 204
    )


# --- sessions --------------------------------------------------------------------------


def test_sessions_lists_live_sessions_with_current(client, user, log_in):
    one = log_in(user["email"], user["password"])
    two = log_in(user["email"], user["password"])
    response = client.get(f"{API}/sessions", headers={**bearer(two["access_token"]), "User-Agent": "curl/8"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 2 and body["pages"] == 1
    assert set(body["items"][0]) == {"id", "created_at", "last_used_at", "user_agent", "ip", "current"}
    assert [s["current"] for s in body["items"]].count(True) == 1
    client.post(f"{API}/logout", headers=bearer(one["access_token"]))
    assert client.get(f"{API}/sessions", headers=bearer(two["access_token"])).get_json()["total"] == 1


def test_delete_session_ends_its_tokens_at_once(client, user, log_in):
    one = log_in(user["email"], user["password"])
    two = log_in(user["email"], user["password"])
    items = client.get(f"{API}/sessions", headers=bearer(two["access_token"])).get_json()["items"]
    other = next(s["id"] for s in items if not s["current"])
    assert client.delete(f"{API}/sessions/{other}", headers=bearer(two["access_token"])).status_code == 204
    assert client.get("/api/v1/users/me", headers=bearer(one["access_token"])).status_code == 401
    assert client.post(f"{API}/refresh", headers=bearer(one["refresh_token"])).status_code == 401
    assert client.delete(f"{API}/sessions/{other}", headers=bearer(two["access_token"])).status_code == 404
    assert client.get("/api/v1/users/me", headers=bearer(two["access_token"])).status_code == 200


def test_another_users_session_is_404(client, app, user, make_user, log_in):
    other = make_user()
    mine = log_in(user["email"], user["password"])
    log_in(other["email"], other["password"])
    with app.app_context():
        theirs = db.session.scalar(db.select(AuthSession.id).where(AuthSession.user_id == other["id"]))
    assert client.delete(f"{API}/sessions/{theirs}", headers=bearer(mine["access_token"])).status_code == 404
    assert (
        client.delete(f"{API}/sessions/{'x' * 300}", headers=bearer(mine["access_token"])).status_code == 404
    )
    assert client.delete(f"{API}/sessions/{theirs}").status_code == 401
    assert client.get(f"{API}/sessions").status_code == 401
    assert client.get(f"{API}/sessions?per_page=101", headers=bearer(mine["access_token"])).status_code == 422


# --- verified tokens are remembered (project.auth.sessions.decode) ------------------------


def test_a_remembered_token_still_expires(client, user, auth_headers, monkeypatch):
    import jwt as pyjwt

    headers = auth_headers(user)
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200  # verified, remembered
    token = headers["Authorization"].split()[1]
    expires = pyjwt.decode(token, options={"verify_signature": False})["exp"]
    monkeypatch.setattr("project.auth.sessions._now", lambda: expires + 1)
    response = client.get("/api/v1/users/me", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.get_json()["message"].lower()


def test_a_remembered_token_is_refused_under_another_key(app, client, user, auth_headers):
    from project import create_app

    headers = auth_headers(user)
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200  # verified, remembered
    other = create_app(
        app_env="testing",
        overrides={
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "JWT_SECRET_KEY": "another-jwt-secret-key-0123456789abcdef",
        },
    )
    response = other.test_client().get("/api/v1/users/me", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["message"] == "Invalid token."


def test_jobs_queued_by_the_previous_release_still_find_their_functions():
    """RQ stores a job's function by dotted path: the paths of the release before the email
    jobs moved to auth/emails.py still import, to the same functions."""
    from rq.utils import import_attribute

    from project.auth import emails, jobs

    assert import_attribute("project.auth.jobs.request_password_reset") is jobs.send_password_reset_job
    for name in ("send_verification_email", "send_password_reset_email", "send_email_changed_notice"):
        assert import_attribute(f"project.auth.jobs.{name}") is getattr(emails, name)

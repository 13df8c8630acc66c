"""/users/me: read, profile update, email change, password change."""

import pytest

ME = "/api/v1/users/me"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_me_returns_the_current_user_without_secrets(client, user, user_headers):
    response = client.get(ME, headers=user_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == user["id"] and body["email"] == user["email"]
    assert set(body) == {"id", "email", "username", "role", "is_active", "is_verified", "created_at"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Token x"}])
def test_me_without_a_valid_token_is_401(client, headers):
    response = client.get(ME, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["status"] == "Unauthorized"


def test_patch_me_username(client, user_headers):
    response = client.patch(ME, headers=user_headers, json={"username": "renamed"})
    assert response.status_code == 200
    assert response.get_json()["username"] == "renamed"
    assert client.get(ME, headers=user_headers).get_json()["username"] == "renamed"


def test_patch_me_email_unverifies_and_sends_a_new_link(client, user, user_headers, mailed_verify_token):
    body = {"email": "New@Example.com", "current_password": user["password"]}
    response = client.patch(ME, headers=user_headers, json=body)
    assert response.status_code == 200
    assert response.get_json()["email"] == "new@example.com"
    assert response.get_json()["is_verified"] is False
    token = mailed_verify_token()
    assert token
    verified = client.post("/api/v1/auth/verify", json={"token": token})
    assert verified.status_code == 200 and verified.get_json()["email"] == "new@example.com"


def test_patch_me_taken_username_or_email_is_409(client, make_user, user, user_headers):
    other = make_user()
    assert (
        client.patch(ME, headers=user_headers, json={"username": other["username"].upper()}).status_code
        == 409
    )
    body = {"email": other["email"], "current_password": user["password"]}
    assert client.patch(ME, headers=user_headers, json=body).status_code == 409


@pytest.mark.parametrize("change", [{"email": "thief@example.com"}, {"password": "N3w!Password"}])
def test_email_or_password_change_needs_the_current_password(client, user, user_headers, change):
    """A stolen access token alone cannot move the account to another mailbox or password."""
    missing = client.patch(ME, headers=user_headers, json=change)
    assert missing.status_code == 422
    assert "current_password" in missing.get_json()["errors"]["json"]
    wrong = client.patch(ME, headers=user_headers, json={**change, "current_password": "Wr0ng!pass"})
    assert wrong.status_code == 403
    assert client.get(ME, headers=user_headers).get_json()["email"] == user["email"]
    assert (
        client.post(
            "/api/v1/auth/login", json={"email": user["email"], "password": user["password"]}
        ).status_code
        == 200
    )


def test_sending_the_unchanged_email_needs_no_password(client, user, user_headers):
    assert client.patch(ME, headers=user_headers, json={"email": user["email"].upper()}).status_code == 200


def test_email_change_tells_the_old_address(client, user, user_headers, caplog, run_jobs):
    caplog.set_level("INFO", logger="project.mail")
    body = {"email": "moved@example.com", "current_password": user["password"]}
    assert client.patch(ME, headers=user_headers, json=body).status_code == 200
    run_jobs(("email",))
    mails = [r.getMessage() for r in caplog.records if r.name == "project.mail"]
    to_old = [m for m in mails if f"to={user['email']} " in m]
    to_new = [m for m in mails if "to=moved@example.com " in m]
    assert len(to_old) == 1 and "was changed" in to_old[0] and "token=" not in to_old[0]
    assert len(to_new) == 1 and "verify-email?token=" in to_new[0]


@pytest.mark.parametrize(
    "body",
    [{"role": "admin"}, {"is_active": False}, {"email": "nope"}, {"username": "x"}, {"username": None}],
)
def test_patch_me_invalid_or_forbidden_fields_are_422(client, user_headers, body):
    assert client.patch(ME, headers=user_headers, json=body).status_code == 422
    assert client.get(ME, headers=user_headers).get_json()["role"] == "user"


def test_a_new_password_must_meet_the_policy(client, user, user_headers):
    weak = client.patch(
        ME, headers=user_headers, json={"password": "weak", "current_password": user["password"]}
    )
    assert weak.status_code == 422


def test_password_change_ends_every_other_session(client, user, log_in):
    this = log_in(user)
    other = log_in(user)
    body = {"password": "N3w!Password", "current_password": user["password"]}
    assert client.patch(ME, headers=bearer(this["access_token"]), json=body).status_code == 200
    assert client.get(ME, headers=bearer(other["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(other["refresh_token"])).status_code == 401
    assert client.get(ME, headers=bearer(this["access_token"])).status_code == 200
    assert log_in({**user, "password": "N3w!Password"})
    old = client.post("/api/v1/auth/login", json={"email": user["email"], "password": user["password"]})
    assert old.status_code == 401


def test_me_is_the_user_schema_of_the_row_and_follows_changes_at_once(
    app, client, user, user_headers, admin_headers
):
    """GET /me answers what the token check read in this request (no ORM object): the same
    document as the user endpoint, and an admin's change shows on the very next request."""
    from project.extensions import db
    from project.users.models import User
    from project.users.schemas import UserSchema

    me = client.get(ME, headers=user_headers)
    with app.app_context():
        expected = UserSchema().dump(db.session.get(User, user["id"]))
    assert me.get_json() == expected
    assert me.data == client.application.json.response(expected).data  # byte for byte
    assert client.get(f"/api/v1/users/{user['id']}", headers=user_headers).data == me.data

    promoted = client.put(f"/api/v1/users/{user['id']}/role", headers=admin_headers, json={"role": "admin"})
    assert promoted.status_code == 200
    assert client.get(ME, headers=user_headers).get_json()["role"] == "admin"
    assert client.post(f"/api/v1/users/{user['id']}/deactivate", headers=admin_headers).status_code == 200
    assert client.get(ME, headers=user_headers).status_code == 401


def test_a_token_with_a_forged_signature_is_refused_after_the_real_one(client, user_headers):
    assert client.get(ME, headers=user_headers).status_code == 200
    token = user_headers["Authorization"].split()[1]
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    assert client.get(ME, headers=bearer(forged)).status_code == 401

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


def test_patch_me_email_unverifies_and_sends_a_new_link(client, user_headers, mailed_verify_token):
    response = client.patch(ME, headers=user_headers, json={"email": "New@Example.com"})
    assert response.status_code == 200
    assert response.get_json()["email"] == "new@example.com"
    assert response.get_json()["is_verified"] is False
    token = mailed_verify_token()
    assert token
    verified = client.post("/api/v1/auth/verify", json={"token": token})
    assert verified.status_code == 200 and verified.get_json()["email"] == "new@example.com"


def test_patch_me_taken_username_or_email_is_409(client, make_user, user_headers):
    other = make_user()
    assert (
        client.patch(ME, headers=user_headers, json={"username": other["username"].upper()}).status_code
        == 409
    )
    assert client.patch(ME, headers=user_headers, json={"email": other["email"]}).status_code == 409


@pytest.mark.parametrize(
    "body",
    [{"role": "admin"}, {"is_active": False}, {"email": "nope"}, {"username": "x"}, {"username": None}],
)
def test_patch_me_invalid_or_forbidden_fields_are_422(client, user_headers, body):
    assert client.patch(ME, headers=user_headers, json=body).status_code == 422
    assert client.get(ME, headers=user_headers).get_json()["role"] == "user"


def test_password_change_needs_the_current_password(client, user, user_headers):
    missing = client.patch(ME, headers=user_headers, json={"password": "N3w!Password"})
    assert missing.status_code == 422
    assert "current_password" in missing.get_json()["errors"]["json"]
    wrong = client.patch(
        ME, headers=user_headers, json={"password": "N3w!Password", "current_password": "Wr0ng!x"}
    )
    assert wrong.status_code == 403
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

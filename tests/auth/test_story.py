"""The whole client story, through HTTP, with the email read from a real SMTP server."""

PASSWORD = "Sup3r$ecret!"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_register_verify_login_refresh_me_logout(client, smtp_server, run_jobs):
    registered = client.post(
        "/api/v1/auth/register",
        json={"email": "Alice@Example.com", "username": "alice", "password": PASSWORD},
    )
    assert registered.status_code == 201, registered.get_json()
    user = registered.get_json()
    assert user["email"] == "alice@example.com"
    assert user["role"] == "user" and user["is_verified"] is False and user["is_active"] is True
    assert "password" not in user and "password_hash" not in user

    run_jobs(("email",))
    token = smtp_server.token_for("alice@example.com", "confirm")
    mail = smtp_server.to("alice@example.com")[-1]
    assert "http://localhost:5000/" in mail.get_body(preferencelist=("plain",)).get_content()

    verified = client.post("/api/v1/auth/verify", json={"token": token})
    assert verified.status_code == 200
    assert verified.get_json()["is_verified"] is True
    assert client.post("/api/v1/auth/verify", json={"token": token}).status_code == 400

    by_json = client.post("/api/v1/auth/login", json={"email": "ALICE@example.com", "password": PASSWORD})
    assert by_json.status_code == 200
    pair = by_json.get_json()
    assert pair["token_type"] == "bearer" and pair["expires_in"] == 30 * 60

    by_form = client.post(
        "/api/v1/auth/login",
        data={"username": "alice@example.com", "password": PASSWORD, "grant_type": "password", "scope": ""},
    )
    assert by_form.status_code == 200, by_form.get_json()
    assert (
        client.post("/api/v1/auth/login", data={"username": "alice", "password": PASSWORD}).status_code == 200
    )

    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200
    new_pair = refreshed.get_json()
    assert new_pair["refresh_token"] != pair["refresh_token"]
    # The spent refresh token is refused, and presenting it again ends the whole session.
    reused = client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert reused.status_code == 401
    assert client.get("/api/v1/users/me", headers=bearer(new_pair["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(new_pair["refresh_token"])).status_code == 401

    fresh = by_form.get_json()
    me = client.get("/api/v1/users/me", headers=bearer(fresh["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["username"] == "alice"

    assert client.post("/api/v1/auth/logout", headers=bearer(fresh["access_token"])).status_code == 204
    gone = client.get("/api/v1/users/me", headers=bearer(fresh["access_token"]))
    assert gone.status_code == 401
    assert gone.get_json()["message"]
    assert client.post("/api/v1/auth/refresh", headers=bearer(fresh["refresh_token"])).status_code == 401

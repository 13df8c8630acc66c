"""Admin management of users: list, get, update, role, deactivate/activate, delete."""

import pytest

from project.extensions import db
from project.users.models import User

USERS = "/api/v1/users"
HUGE = 2**64


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_list_is_paginated_with_filters(client, admin, make_user, admin_headers):
    make_user(email="carol@shop.example", username="carol")
    make_user(email="dave@example.com", username="dave", is_active=False)
    make_user("admin", email="erin@example.com", username="erin_admin")
    page = client.get(f"{USERS}?per_page=2", headers=admin_headers).get_json()
    assert page["total"] == 4 and page["pages"] == 2 and page["per_page"] == 2 and len(page["items"]) == 2
    ids = [u["id"] for u in page["items"]] + [
        u["id"] for u in client.get(f"{USERS}?per_page=2&page=2", headers=admin_headers).get_json()["items"]
    ]
    assert ids == sorted(ids) and len(set(ids)) == 4

    def names(query):
        response = client.get(f"{USERS}?{query}", headers=admin_headers)
        assert response.status_code == 200
        return sorted(u["username"] for u in response.get_json()["items"])

    assert names("q=SHOP") == ["carol"]
    assert names("q=dav") == ["dave"]
    assert names("role=admin") == sorted([admin["username"], "erin_admin"])
    assert names("is_active=false") == ["dave"]
    assert names("q=%25") == [] and names("q=_") == ["erin_admin"]
    assert client.get(f"{USERS}?page=9", headers=admin_headers).get_json()["items"] == []


@pytest.mark.parametrize("query", ["per_page=101", "page=0", "role=root", "is_active=maybe", "per_page=x"])
def test_list_bad_query_is_422(client, admin_headers, query):
    assert client.get(f"{USERS}?{query}", headers=admin_headers).status_code == 422


def test_list_is_admin_only(client, user_headers):
    assert client.get(USERS, headers=user_headers).status_code == 403
    assert client.get(USERS).status_code == 401
    assert client.get(f"{USERS}/", headers=user_headers).status_code == 403


def test_get_user_admin_or_self(client, admin_headers, user, make_user, user_headers):
    other = make_user()
    assert client.get(f"{USERS}/{other['id']}", headers=admin_headers).get_json()["email"] == other["email"]
    assert client.get(f"{USERS}/{user['id']}", headers=user_headers).status_code == 200
    assert client.get(f"{USERS}/{other['id']}", headers=user_headers).status_code == 404
    for bad in (999999, HUGE, 2**63, 0):
        assert client.get(f"{USERS}/{bad}", headers=admin_headers).status_code == 404
    assert client.get(f"{USERS}/-1", headers=admin_headers).status_code == 404
    assert client.get(f"{USERS}/abc", headers=admin_headers).status_code == 404
    assert client.get(f"{USERS}/{user['id']}").status_code == 401


def test_admin_patch_user(client, admin_headers, user, mailed_verify_token):
    response = client.patch(
        f"{USERS}/{user['id']}", headers=admin_headers, json={"username": "patched", "email": "P@example.com"}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["username"] == "patched" and body["email"] == "p@example.com" and body["is_verified"] is False
    assert mailed_verify_token()
    response = client.patch(f"{USERS}/{user['id']}", headers=admin_headers, json={"is_verified": True})
    assert response.get_json()["is_verified"] is True


def test_admin_patch_failures(client, admin, admin_headers, user, make_user, user_headers):
    other = make_user()
    url = f"{USERS}/{user['id']}"
    assert client.patch(url, headers=user_headers, json={"username": "nope"}).status_code == 403
    assert client.patch(url, json={"username": "nope"}).status_code == 401
    assert (
        client.patch(f"{USERS}/{HUGE}", headers=admin_headers, json={"username": "nope"}).status_code == 404
    )
    assert client.patch(url, headers=admin_headers, json={"email": other["email"].upper()}).status_code == 409
    assert client.patch(url, headers=admin_headers, json={"role": "admin"}).status_code == 422
    assert client.patch(url, headers=admin_headers, json={"password": "N3w!Password"}).status_code == 422
    last_admin = client.patch(f"{USERS}/{admin['id']}", headers=admin_headers, json={"is_active": False})
    assert last_admin.status_code == 409


def test_admin_patch_is_active_false_ends_sessions(client, admin_headers, user, log_in):
    pair = log_in(user)
    response = client.patch(f"{USERS}/{user['id']}", headers=admin_headers, json={"is_active": False})
    assert response.status_code == 200 and response.get_json()["is_active"] is False
    assert client.get(f"{USERS}/me", headers=bearer(pair["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"])).status_code == 401


def test_role_change_applies_at_once_to_existing_tokens(client, admin, admin_headers, user, user_headers):
    assert client.get(USERS, headers=user_headers).status_code == 403
    promoted = client.put(f"{USERS}/{user['id']}/role", headers=admin_headers, json={"role": "admin"})
    assert promoted.status_code == 200 and promoted.get_json()["role"] == "admin"
    assert client.get(USERS, headers=user_headers).status_code == 200
    # Two admins now: the first may step down; then the other is the last.
    assert (
        client.put(f"{USERS}/{admin['id']}/role", headers=user_headers, json={"role": "user"}).status_code
        == 200
    )
    assert client.get(USERS, headers=admin_headers).status_code == 403
    last = client.put(f"{USERS}/{user['id']}/role", headers=user_headers, json={"role": "user"})
    assert last.status_code == 409
    assert last.get_json()["code"] == 409


def test_role_change_failures(client, admin, admin_headers, user, user_headers):
    url = f"{USERS}/{user['id']}/role"
    assert client.put(url, headers=admin_headers, json={"role": "root"}).status_code == 422
    assert client.put(url, headers=admin_headers, json={}).status_code == 422
    assert client.put(url, headers=user_headers, json={"role": "admin"}).status_code == 403
    assert client.put(url, json={"role": "admin"}).status_code == 401
    assert client.put(f"{USERS}/{HUGE}/role", headers=admin_headers, json={"role": "user"}).status_code == 404
    assert (
        client.put(f"{USERS}/{admin['id']}/role", headers=admin_headers, json={"role": "user"}).status_code
        == 409
    )
    assert (
        client.put(f"{USERS}/{admin['id']}/role", headers=admin_headers, json={"role": "admin"}).status_code
        == 200
    )


def test_inactive_admin_does_not_save_the_last_active_admin(client, admin, admin_headers, make_user):
    make_user("admin", is_active=False)
    assert (
        client.put(f"{USERS}/{admin['id']}/role", headers=admin_headers, json={"role": "user"}).status_code
        == 409
    )


def test_deactivate_ends_every_session_and_activate_lets_the_user_log_in(client, admin_headers, user, log_in):
    one, two = log_in(user), log_in(user)
    response = client.post(f"{USERS}/{user['id']}/deactivate", headers=admin_headers)
    assert response.status_code == 200 and response.get_json()["is_active"] is False
    for pair in (one, two):
        assert client.get(f"{USERS}/me", headers=bearer(pair["access_token"])).status_code == 401
        assert client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"])).status_code == 401
    login = {"email": user["email"], "password": user["password"]}
    assert client.post("/api/v1/auth/login", json=login).status_code == 403

    activated = client.post(f"{USERS}/{user['id']}/activate", headers=admin_headers)
    assert activated.status_code == 200 and activated.get_json()["is_active"] is True
    assert client.get(f"{USERS}/me", headers=bearer(one["access_token"])).status_code == 401
    fresh = log_in(user)
    assert client.get(f"{USERS}/me", headers=bearer(fresh["access_token"])).status_code == 200


def test_deactivate_and_activate_failures(client, admin, admin_headers, user, user_headers):
    for action in ("deactivate", "activate"):
        assert client.post(f"{USERS}/{user['id']}/{action}", headers=user_headers).status_code == 403
        assert client.post(f"{USERS}/{user['id']}/{action}").status_code == 401
        assert client.post(f"{USERS}/{HUGE}/{action}", headers=admin_headers).status_code == 404
    assert client.post(f"{USERS}/{admin['id']}/deactivate", headers=admin_headers).status_code == 409


def test_delete_user_then_404_and_the_names_are_free_again(client, admin_headers, user, log_in):
    pair = log_in(user)
    assert client.delete(f"{USERS}/{user['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"{USERS}/{user['id']}", headers=admin_headers).status_code == 404
    assert client.delete(f"{USERS}/{user['id']}", headers=admin_headers).status_code == 404
    assert client.get(f"{USERS}/me", headers=bearer(pair["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(pair["refresh_token"])).status_code == 401
    again = client.post(
        "/api/v1/auth/register",
        json={"email": user["email"], "username": user["username"], "password": user["password"]},
    )
    assert again.status_code == 201


def test_delete_failures(client, app, admin, admin_headers, user, user_headers):
    assert client.delete(f"{USERS}/{user['id']}", headers=user_headers).status_code == 403
    assert client.delete(f"{USERS}/{user['id']}").status_code == 401
    assert client.delete(f"{USERS}/{HUGE}", headers=admin_headers).status_code == 404
    assert client.delete(f"{USERS}/{admin['id']}", headers=admin_headers).status_code == 409
    with app.app_context():
        assert db.session.get(User, admin["id"]) is not None


@pytest.mark.postgres
def test_two_admins_demoting_themselves_at_once_leave_one_admin(app, make_user, auth_headers):
    import threading

    admins = [make_user("admin") for _ in range(2)]
    headers = [auth_headers(a) for a in admins]
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def demote(index: int) -> None:
        client = app.test_client()
        barrier.wait()
        url = f"{USERS}/{admins[index]['id']}/role"
        codes.append(client.put(url, headers=headers[index], json={"role": "user"}).status_code)

    threads = [threading.Thread(target=demote, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200, 409]
    with app.app_context():
        assert db.session.query(User).filter_by(role="admin", is_active=True).count() == 1

"""Every kind of error answer carries its `error` code (README, Error codes); the token endpoints
answer RFC 6749 5.2's codes with `error_description`, so OAuth2 clients raise their own errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from project.errors import ERROR_CODES, STATUS_ERRORS, ErrorSchema
from tests.helpers import STRONG_PASSWORD, assert_error

AUTH = "/api/v1/auth"
PRODUCTS = "/api/v1/products"
ORDERS = "/api/v1/orders"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_the_catalogue_names_every_default_code_and_is_the_openapi_enum(client):
    assert set(STATUS_ERRORS.values()) <= set(ERROR_CODES)
    assert all(code.isidentifier() and code == code.lower() for code in ERROR_CODES)
    schema = client.get("/openapi.json").get_json()["components"]["schemas"]["Error"]
    assert sorted(schema["properties"]["error"]["enum"]) == sorted(ERROR_CODES)
    assert "error" in schema["required"]
    assert ErrorSchema  # the one schema the document names


def test_the_proxy_and_gunicorn_answer_only_catalogued_codes():
    """nginx's own errors (deploy/nginx) and gunicorn's refusals (gunicorn.conf.py) use codes of
    the one catalogue; what each answers is tested for real in tests/topology/test_edge_proxy.py."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    template = (root / "deploy" / "nginx" / "templates" / "api.conf.template").read_text()
    proxy_codes = set(re.findall(r'"error": "([a-z_]+)"', template))
    proxy_only = {"request_timeout", "uri_too_long", "headers_too_large", "bad_gateway", "gateway_timeout"}
    assert proxy_only <= proxy_codes
    gunicorn_conf = (root / "gunicorn.conf.py").read_text()
    gunicorn_codes = set(re.findall(r'\d{3}: "([a-z_]+)"', gunicorn_conf))
    assert gunicorn_codes, "gunicorn.conf.py names no codes"
    assert proxy_codes | gunicorn_codes <= set(ERROR_CODES)


# --- the token endpoints: RFC 6749 5.2 --------------------------------------------------------


def test_authlib_raises_invalid_grant_for_a_wrong_password(live_server, user):
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.requests_client import OAuth2Session

    oauth = OAuth2Session(client_id="docs")
    with pytest.raises(OAuthError) as raised:
        oauth.fetch_token(f"{live_server}{AUTH}/login", username=user["email"], password="Wr0ng!password")
    assert raised.value.error == "invalid_grant"
    assert raised.value.description  # error_description, for people


def test_authlib_raises_invalid_grant_for_a_spent_refresh_token(live_server, user):
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.requests_client import OAuth2Session

    oauth = OAuth2Session(client_id="docs")
    first = oauth.fetch_token(f"{live_server}{AUTH}/login", username=user["email"], password=user["password"])
    oauth.refresh_token(f"{live_server}{AUTH}/refresh")  # spends the first refresh token

    with pytest.raises(OAuthError) as raised:
        oauth.refresh_token(f"{live_server}{AUTH}/refresh", refresh_token=first["refresh_token"])
    assert raised.value.error == "invalid_grant"


def test_token_endpoint_bad_credentials_are_invalid_grant_with_description(client, user):
    response = client.post(f"{AUTH}/login", data={"username": user["email"], "password": "Wr0ng!password"})
    body = assert_error(response, 401, "invalid_grant")
    assert body["error_description"] == body["message"]


def test_token_endpoint_deactivated_account_is_invalid_grant(client, make_user):
    gone = make_user(is_active=False)
    assert_error(
        client.post(f"{AUTH}/login", json={"email": gone["email"], "password": gone["password"]}),
        403,
        "invalid_grant",
    )


def test_token_endpoint_missing_fields_are_invalid_request(client):
    assert_error(client.post(f"{AUTH}/login", data={"username": "someone"}), 422, "invalid_request")
    assert_error(client.post(f"{AUTH}/refresh"), 401, "invalid_request")  # no token at all


def test_token_endpoint_other_grant_type_is_unsupported_grant_type(client):
    form = {"grant_type": "client_credentials", "refresh_token": "x"}
    body = assert_error(client.post(f"{AUTH}/refresh", data=form), 422, "unsupported_grant_type")
    assert "error_description" in body


def test_token_endpoint_lockout_is_temporarily_unavailable(client, user):
    for _ in range(5):
        client.post(f"{AUTH}/login", json={"email": user["email"], "password": "Wr0ng!password"})
    response = client.post(f"{AUTH}/login", json={"email": user["email"], "password": user["password"]})
    assert_error(response, 429, "temporarily_unavailable")
    assert int(response.headers["Retry-After"]) >= 1


def test_the_lockout_raises_login_locked_elsewhere(app, user):
    """Outside the token endpoints (the service, PATCH /users/me) the lockout keeps its own code."""
    from project.auth import service
    from project.errors import TooManyRequests

    with app.app_context():
        for _ in range(5):
            with pytest.raises(Exception):  # noqa: B017  (the 401s before the lock)
                service.login(user["email"], "Wr0ng!password", None, "10.0.0.1")
        with pytest.raises(TooManyRequests) as raised:
            service.login(user["email"], user["password"], None, "10.0.0.1")
    assert raised.value.error == "login_locked"


def test_other_endpoints_have_no_error_description(client):
    body = assert_error(client.get("/api/v1/users/me"), 401, "missing_token")
    assert "error_description" not in body


# --- 400 -----------------------------------------------------------------------------------


def test_malformed_request(client, user):
    response = client.post(f"{AUTH}/register", data="{not json", content_type="application/json")
    assert_error(response, 400, "malformed_request")


def test_invalid_link(client):
    assert_error(client.post(f"{AUTH}/verify", json={"token": "x" * 40}), 400, "invalid_link")


# --- 401 -----------------------------------------------------------------------------------


def test_missing_token(client):
    assert_error(client.get("/api/v1/users/me"), 401, "missing_token")


def test_invalid_token(client, user, log_in):
    assert_error(client.get("/api/v1/users/me", headers=bearer("not.a.jwt")), 401, "invalid_token")
    refresh = log_in(user)["refresh_token"]
    assert_error(client.get("/api/v1/users/me", headers=bearer(refresh)), 401, "invalid_token")


def test_token_expired(app, client, user):
    from flask_jwt_extended import create_access_token

    with app.app_context():
        expired = create_access_token(identity=str(user["id"]), expires_delta=timedelta(seconds=-5))
    assert_error(client.get("/api/v1/users/me", headers=bearer(expired)), 401, "token_expired")


def test_token_revoked(client, user, log_in):
    access = log_in(user)["access_token"]
    assert client.post(f"{AUTH}/logout", headers=bearer(access)).status_code == 204
    assert_error(client.get("/api/v1/users/me", headers=bearer(access)), 401, "token_revoked")


# --- 403 -----------------------------------------------------------------------------------


def test_forbidden(client, user, auth_headers):
    assert_error(client.get("/api/v1/users", headers=auth_headers(user)), 403, "forbidden")


def test_wrong_password(client, user, auth_headers):
    change = {"email": "new@example.com", "current_password": "Wr0ng!password"}
    assert_error(
        client.patch("/api/v1/users/me", json=change, headers=auth_headers(user)), 403, "wrong_password"
    )


# --- 404, 405 ------------------------------------------------------------------------------


def test_not_found(client):
    assert_error(client.get(f"{PRODUCTS}/987654"), 404, "not_found")
    assert_error(client.get("/api/v1/no-such-thing"), 404, "not_found")


def test_method_not_allowed(client):
    response = client.delete(PRODUCTS)
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


# --- 409: one code per conflict --------------------------------------------------------------


def test_email_taken_and_username_taken(client, user):
    taken_email = {"email": user["email"], "username": "fresh_name", "password": STRONG_PASSWORD}
    assert_error(client.post(f"{AUTH}/register", json=taken_email), 409, "email_taken")
    taken_name = {"email": "fresh@example.com", "username": user["username"], "password": STRONG_PASSWORD}
    assert_error(client.post(f"{AUTH}/register", json=taken_name), 409, "username_taken")


def test_sku_taken(client, admin_headers, make_product):
    product = make_product()
    body = {"sku": product["sku"], "name": "Again", "price": 1.5}
    assert_error(client.post(PRODUCTS, json=body, headers=admin_headers), 409, "sku_taken")


def test_insufficient_stock(client, admin_headers, make_product):
    product = make_product(stock=1)
    response = client.patch(f"{PRODUCTS}/{product['id']}/stock", json={"delta": -2}, headers=admin_headers)
    assert_error(response, 409, "insufficient_stock")


def test_illegal_transition(client, user, auth_headers, make_product):
    headers = auth_headers(user)
    product = make_product(stock=5)
    order = client.post(
        ORDERS, json={"items": [{"product_id": product["id"], "quantity": 1}]}, headers=headers
    )
    order_id = order.get_json()["id"]
    assert client.post(f"{ORDERS}/{order_id}/cancel", headers=headers).status_code == 200
    assert_error(client.post(f"{ORDERS}/{order_id}/pay", headers=headers), 409, "illegal_transition")


def test_idempotency_key_reused(client, user, auth_headers, make_product):
    headers = {**auth_headers(user), "Idempotency-Key": "k-1"}
    product = make_product(stock=5)
    first = client.post(
        ORDERS, json={"items": [{"product_id": product["id"], "quantity": 1}]}, headers=headers
    )
    assert first.status_code == 202
    other = client.post(
        ORDERS, json={"items": [{"product_id": product["id"], "quantity": 2}]}, headers=headers
    )
    assert_error(other, 409, "idempotency_key_reused")


def test_last_admin(client, admin, admin_headers):
    response = client.put(f"/api/v1/users/{admin['id']}/role", json={"role": "user"}, headers=admin_headers)
    assert_error(response, 409, "last_admin")


def test_membership_conflict(client, user, auth_headers):
    headers = auth_headers(user)
    project = client.post("/api/v1/projects", json={"name": "P"}, headers=headers).get_json()
    response = client.post(f"/api/v1/projects/{project['id']}/members/{user['id']}", headers=headers)
    assert_error(response, 409, "membership_conflict")


# --- 413, 422, 429 -------------------------------------------------------------------------


@pytest.mark.app_config(MAX_CONTENT_LENGTH=64)
def test_payload_too_large(client):
    response = client.post(f"{AUTH}/register", json={"email": "x" * 200})
    assert_error(response, 413, "payload_too_large")


def test_validation_failed(client):
    body = assert_error(client.get(f"{PRODUCTS}?per_page=1000"), 422, "validation_failed")
    assert "per_page" in body["errors"]["query"]


@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATE_LIMIT_AUTH="1/minute")
def test_rate_limited(client):
    client.post(f"{AUTH}/password/forgot", json={"email": "a@example.com"})
    response = client.post(f"{AUTH}/password/forgot", json={"email": "a@example.com"})
    assert_error(response, 429, "rate_limited")


# --- 5xx -----------------------------------------------------------------------------------


def _failing_token_check(app, exc: Exception) -> None:
    def check(_token):
        raise exc

    app.extensions["token_check"] = check


def test_internal_error(app, client):
    _failing_token_check(app, RuntimeError("a bug"))
    assert_error(client.get("/api/v1/users/me", headers=bearer("x")), 500, "internal_error")


def test_service_unavailable(app, client):
    _failing_token_check(app, OperationalError("SELECT 1", {}, ConnectionError("down")))
    assert_error(client.get("/api/v1/users/me", headers=bearer("x")), 503, "service_unavailable")


def test_upstream_failed(app, client):
    app.config["POSTS_API_URL"] = "http://127.0.0.1:1"
    assert_error(client.get("/api/v1/posts/1"), 502, "upstream_failed")


# --- the RQ dashboard's own 401 --------------------------------------------------------------


@pytest.mark.app_config(RQ_DASHBOARD_USERNAME="ops", RQ_DASHBOARD_PASSWORD="s3cret-pass")
def test_authentication_required(app, monkeypatch):
    import rq_dashboard.web

    if app.config["REDIS_URL"].startswith("fakeredis://"):
        monkeypatch.setattr(rq_dashboard.web, "from_url", lambda *a, **k: (None, app.extensions["redis"]))
    response = app.test_client().get("/rq/")
    assert_error(response, 401, "authentication_required")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_the_readme_lists_every_code():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [code for code in ERROR_CODES if f"| `{code}` |" not in readme]
    assert missing == [], "README's Error codes table lacks these"


def test_server_error_on_a_token_endpoint(client, monkeypatch):
    from project.auth import service

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "login", broken)
    body = assert_error(client.post(f"{AUTH}/login", json={"email": "a@example.com", "password": "x"}), 500)
    assert body["error"] == "server_error" and body["error_description"]


def test_conflict_is_the_code_of_a_409_no_domain_error_named(app):
    """A 409 from werkzeug (no route raises one today) still carries a code from the list."""
    from werkzeug.exceptions import Conflict

    def clash():
        raise Conflict()

    app.add_url_rule("/api/v1/test-clash", "test_clash", clash)
    assert_error(app.test_client().get("/api/v1/test-clash"), 409, "conflict")

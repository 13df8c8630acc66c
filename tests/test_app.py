"""The app factory, the error shape, config and migrations."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from config import check_production_config
from project import create_app
from project.extensions import db
from tests.helpers import assert_error


def test_liveness(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_unknown_path_is_json_404(client):
    assert_error(client.get("/nope"), 404)


def test_wrong_method_is_json_405(client):
    body = assert_error(client.delete("/health"), 405)
    assert body["status"] == "Method Not Allowed"


def test_trailing_slash_answers_the_same_without_redirect(client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_openapi_document_and_docs_pages(client):
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.get_json()["openapi"].startswith("3.")
    assert "/health" in spec.get_json()["paths"]
    assert client.get("/docs").status_code == 200
    assert client.get("/redoc").status_code == 200


def test_production_refuses_development_secrets():
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(
            app_env="production",
            overrides={
                "SQLALCHEMY_DATABASE_URI": "sqlite://",
                "REDIS_URL": "fakeredis://",
                "MAIL_SERVER": "x",
            },
        )


def test_production_accepts_real_secrets_and_a_mail_server():
    good = {
        "SQLALCHEMY_DATABASE_URI": "postgresql://db/app",
        "REDIS_URL": "redis://redis/0",
        "SECRET_KEY": "s" * 32,
        "JWT_SECRET_KEY": "j" * 32,
        "MAIL_SERVER": "smtp.example.com",
    }
    check_production_config(good)
    with pytest.raises(RuntimeError, match="JWT_SECRET_KEY"):
        check_production_config({**good, "JWT_SECRET_KEY": ""})


def test_production_refuses_to_start_without_a_mail_server():
    """Without one, mail would go to the log, reset links and their tokens with it."""
    settings = {
        "SECRET_KEY": "s" * 32,
        "JWT_SECRET_KEY": "j" * 32,
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
        "REDIS_URL": "fakeredis://",
    }
    with pytest.raises(RuntimeError, match="MAIL_SERVER"):
        create_app(app_env="production", overrides={**settings, "MAIL_SERVER": None})
    assert create_app(app_env="production", overrides={**settings, "MAIL_SERVER": "smtp.example.com"})


def test_migrations_match_the_models(app):
    with app.app_context(), db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


@pytest.mark.parametrize(
    "price, message",
    [
        ("1" + "0" * 81, "less than"),
        ("0." + "0" * 29 + "1", "two decimal places"),
        ("12.345", "two decimal"),
        # Exponents are no ASCII decimal (API.md, Conventions): refused before the field reads them.
        ("1.4779957525769927e+81", "ASCII digits"),
        ("1e-30", "ASCII digits"),
    ],
)
def test_money_query_values_out_of_range_are_a_422(client, price, message):
    response = client.get("/api/v1/products", query_string={"min_price": price})
    body = assert_error(response, 422)
    assert message in body["errors"]["query"]["min_price"][0]


def test_money_accepts_two_places_and_whole_numbers(client):
    assert (
        client.get("/api/v1/products", query_string={"min_price": "12.50", "max_price": "100"}).status_code
        == 200
    )


def test_malformed_json_is_a_400_in_the_error_shape(client, user_headers):
    response = client.post(
        "/api/v1/projects", data="{bad", content_type="application/json", headers=user_headers
    )
    body = assert_error(response, 400)
    assert body["errors"] == {"json": ["Invalid JSON body."]}
    assert "malformed" in body["message"]


def test_validation_errors_name_the_field(client, user_headers):
    response = client.post("/api/v1/projects", json={"name": "x", "bogus": 1}, headers=user_headers)
    body = assert_error(response, 422)
    assert body["errors"]["json"]["bogus"] == ["Unknown field."]


def client_address_seen(app, forwarded_for: str) -> str:
    from flask import request

    seen = {}

    @app.get("/whoami")
    def whoami():
        seen["ip"] = request.remote_addr
        return {}

    app.test_client().get("/whoami", headers={"X-Forwarded-For": forwarded_for})
    return seen["ip"]


@pytest.mark.app_config(TRUSTED_PROXY_COUNT=1)
def test_behind_a_trusted_proxy_the_client_address_is_the_forwarded_one(app):
    assert client_address_seen(app, "203.0.113.7") == "203.0.113.7"


def test_without_trusted_proxies_forwarded_for_is_ignored(app):
    assert client_address_seen(app, "203.0.113.7") == "127.0.0.1"


@pytest.mark.parametrize(
    "method, path, kwargs",
    [
        ("post", "/api/v1/auth/login", {"data": {"username": "a\x00b", "password": "x"}}),
        ("post", "/api/v1/auth/login", {"json": {"username": "a\x00b", "password": "x"}}),
        (
            "post",
            "/api/v1/auth/register",
            {"json": {"email": "a@b.co", "username": "ab", "password": "\x00"}},
        ),
        ("get", "/api/v1/products", {"query_string": {"name": "lamp\x00"}}),
        ("get", "/api/v1/products/search", {"query_string": {"q\x00": "x", "q": "x"}}),
    ],
)
def test_nul_characters_are_a_422_everywhere(client, method, path, kwargs):
    """PostgreSQL text cannot hold U+0000: every input is refused before it reaches a query."""
    response = getattr(client, method)(path, **kwargs)
    body = assert_error(response, 422)
    assert "NUL" in body["message"]
    assert response.headers.get("X-Request-ID")


def test_nul_in_a_path_segment_is_a_422(client, user_headers):
    response = client.delete("/api/v1/auth/sessions/abc%00def", headers=user_headers)
    assert_error(response, 422)


@pytest.mark.parametrize("page", ["0", "-1", "10000001", "930109325180979363056427032490541056"])
def test_pages_out_of_range_are_a_422_on_every_list(client, admin_headers, page):
    for path in ("/api/v1/products", "/api/v1/users", "/api/v1/orders", "/api/v1/projects"):
        response = client.get(path, query_string={"page": page}, headers=admin_headers)
        body = assert_error(response, 422)
        assert "page" in body["errors"]["query"], path


def test_a_page_past_the_end_is_an_empty_page(client, admin_headers):
    body = client.get("/api/v1/products", query_string={"page": "10000000"}).get_json()
    assert body["items"] == [] and body["page"] == 10_000_000 and body["pages"] == 0


APP_NAME = "pytest-terminated"


@pytest.mark.postgres
@pytest.mark.app_config(SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"application_name": APP_NAME}})
def test_connections_the_server_ends_are_503s_or_200s_then_recover(app, client, user, user_headers):
    """No pool pre-ping: after pg_terminate_backend (a restart or failover does the same) a
    request on a dead pooled connection is a 503 at worst, never a 500, and the pool heals."""
    import psycopg2

    paths = [
        ("/api/v1/users/me", user_headers),
        (f"/api/v1/users/{user['id']}", user_headers),
        ("/api/v1/products?page={n}", {}),
        ("/health/db", {}),
    ]
    for n, (path, headers) in enumerate(paths):
        assert client.get(path.format(n=n), headers=headers).status_code == 200

    with psycopg2.connect(app.config["SQLALCHEMY_DATABASE_URI"].replace("+psycopg2", "")) as admin:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
                (APP_NAME,),
            )
            assert cursor.fetchone()[0] >= 1
    admin.close()

    statuses = []
    for attempt in range(3):
        for n, (path, headers) in enumerate(paths):
            response = client.get(path.format(n=10 * (attempt + 1) + n), headers=headers)
            assert response.status_code in (200, 503), (path, response.status_code, response.get_json())
            if response.status_code == 503:
                assert response.get_json()["code"] == 503
            statuses.append(response.status_code)
    assert statuses[-len(paths) :] == [200] * len(paths), statuses

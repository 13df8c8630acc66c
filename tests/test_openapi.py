"""The OpenAPI document and the docs pages, as clients' tools read them.

The generated-client flow is tests/test_generated_client.py; the fuzz (tests/test_fuzz.py) checks
every answer against the documented schemas and that every status code answered is documented.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from openapi_spec_validator import validate

ERROR_REF = {"$ref": "#/components/schemas/Error"}
CACHED_GETS = {
    "/api/v1/products",
    "/api/v1/products/search",
    "/api/v1/products/{product_id}",
    "/api/v1/posts",
    "/api/v1/posts/{post_id}",
}
# Health answers keep their own shape on 503 (API.md, Operations).
HEALTH_PATHS = {"/health/db", "/health/cache", "/health/full"}


@pytest.fixture
def spec(client) -> dict:
    return client.get("/openapi.json").get_json()


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


def schema_of(spec: dict, ref: dict) -> dict:
    return spec["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]


def test_the_document_is_valid_openapi_3(spec):
    assert spec["openapi"].startswith("3.")
    validate(spec)  # openapi-spec-validator raises on any violation


def test_every_operation_has_a_short_unique_operation_id(spec):
    ids = {
        (method.upper(), path): operation.get("operationId") for path, method, operation in operations(spec)
    }
    assert len(ids) >= 50
    missing = [key for key, operation_id in ids.items() if not operation_id]
    assert not missing, f"operations without an operationId: {missing}"
    assert len(set(ids.values())) == len(ids), "operationIds must be unique"
    assert all(re.fullmatch(r"[a-z][A-Za-z]{2,24}", operation_id) for operation_id in ids.values()), ids
    assert ids[("POST", "/api/v1/auth/login")] == "login"
    assert ids[("POST", "/api/v1/auth/refresh")] == "refreshToken"
    assert ids[("GET", "/api/v1/products")] == "listProducts"
    assert ids[("GET", "/api/v1/products/{product_id}")] == "getProduct"
    assert ids[("POST", "/api/v1/orders")] == "createOrder"
    assert ids[("POST", "/api/v1/projects/{project_id}/tasks")] == "createTask"


def test_every_error_response_has_the_error_shape(spec):
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "status", "error", "message"}
    assert (
        spec["components"]["responses"]["DEFAULT_ERROR"]["content"]["application/json"]["schema"] == ERROR_REF
    )
    checked = 0
    for path, method, operation in operations(spec):
        for code, response in operation["responses"].items():
            if code == "default" or int(code) < 400 or (path in HEALTH_PATHS and code == "503"):
                continue
            checked += 1
            assert response["content"]["application/json"]["schema"] == ERROR_REF, (method, path, code)
            assert response["description"], (method, path, code)
    assert checked > 150


def test_protected_operations_document_401_with_www_authenticate_and_roles_403(spec):
    protected = [(path, method, op) for path, method, op in operations(spec) if op.get("security")]
    assert len(protected) >= 35
    for path, method, operation in protected:
        assert operation["security"] == [{"bearerAuth": []}, {"OAuth2": []}], (method, path)
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], (method, path)
    admin_only = spec["paths"]["/api/v1/products/{product_id}/stock"]["patch"]
    assert {"401", "403", "404", "409", "422", "429"} <= set(admin_only["responses"])


def test_every_operation_that_turns_away_anonymous_callers_documents_it(client, spec):
    """Behaviour and document agree: an operation that answers 401 without a token lists 401."""
    answered_401 = []
    for path, method, operation in operations(spec):
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = client.open(
            url, method=method.upper(), json={} if method in ("post", "put", "patch") else None
        )
        if response.status_code == 401:
            answered_401.append(operation["operationId"])
            assert "401" in operation["responses"], (method, path)
    assert len(answered_401) >= 35


def test_rate_limits_bodies_and_path_ids_are_documented(spec):
    for path, method, operation in operations(spec):
        responses = operation["responses"]
        where = (method, path)
        if not path.startswith(("/health", "/metrics")):
            retry_after = responses["429"]["headers"]["Retry-After"]
            assert retry_after["schema"] == {"type": "integer", "minimum": 1}, where
        if "requestBody" in operation:
            assert {"400", "413"} <= set(responses), where
        if "{" in path:
            assert "404" in responses, where
    login = spec["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert {"401", "403", "422", "429"} <= set(login)


def test_cached_gets_document_x_cache_etag_and_304(client, spec):
    for path in CACHED_GETS:
        operation = spec["paths"][path]["get"]
        headers = operation["responses"]["200"]["headers"]
        assert headers["X-Cache"]["schema"] == {"type": "string", "enum": ["HIT", "MISS", "STALE"]}, path
        assert headers["ETag"]["schema"] == {"type": "string"}, path
        assert "content" not in operation["responses"]["304"], path
        assert {"in": "header", "name": "If-None-Match"}.items() <= next(
            p for p in operation["parameters"] if p["name"] == "If-None-Match"
        ).items(), path
    assert client.get("/api/v1/products").headers["X-Cache"] in ("HIT", "MISS")


def test_response_schemas_list_their_required_fields_and_enums(spec):
    """Every field of every success answer under /api/v1 is required (null where it may be null),
    so a generated client's fields are never optional by mistake."""
    seen: set[str] = set()

    def walk(schema: dict) -> None:
        for ref in re.findall(r"#/components/schemas/(\w+)", str(schema)):
            if ref not in seen:
                seen.add(ref)
                component = spec["components"]["schemas"][ref]
                assert set(component.get("required", [])) == set(component["properties"]), ref
                walk(component)

    for path, _method, operation in operations(spec):
        for code, response in operation["responses"].items():
            if path.startswith("/api/v1") and code.startswith("2"):
                walk(response.get("content", {}))
    assert {"Product", "Post", "Project", "Task", "SyncRun", "SyncStatus", "User", "Order"} <= seen

    schemas = spec["components"]["schemas"]
    assert schemas["User"]["properties"]["role"]["enum"] == ["user", "admin"]
    assert schemas["SyncRun"]["properties"]["status"]["enum"] == ["running", "succeeded", "failed"]
    assert schemas["Task"]["properties"]["status"]["enum"] == ["todo", "in_progress", "done"]
    assert schemas["Order"]["properties"]["status"]["enum"] == [
        "pending",
        "reserved",
        "failed",
        "paid",
        "cancelled",
    ]
    assert schemas["SyncStatus"]["properties"]["last_run"] == {
        "allOf": [{"$ref": "#/components/schemas/SyncRun"}],
        "nullable": True,
        "description": "null before the first sync.",
    }
    assert schemas["TaskCreate"]["properties"]["status"]["enum"] == ["todo", "in_progress", "done"]


def test_security_schemes_offer_bearer_and_the_oauth2_password_flow(spec):
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    password = schemes["OAuth2"]["flows"]["password"]
    assert (password["tokenUrl"], password["refreshUrl"]) == ("/api/v1/auth/login", "/api/v1/auth/refresh")
    login_body = spec["paths"]["/api/v1/auth/login"]["post"]["requestBody"]["content"]
    assert set(login_body) == {"application/json", "application/x-www-form-urlencoded"}


class AssetRefs(HTMLParser):
    """Every URL a page loads: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        wanted = {"script": "src", "link": "href", "img": "src"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_this_server(client, page):
    response = client.get(page)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), "an outside URL"
    refs = AssetRefs()
    refs.feed(html)
    assert len(refs.urls) >= (3 if page == "/docs" else 1)
    for url in refs.urls:
        assert url.startswith("/static/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.get_data()) > 1000, url
        assert asset.mimetype in ("text/javascript", "application/javascript", "text/css"), url


def test_swagger_ui_calls_no_outside_validator(client):
    html = client.get("/docs").get_data(as_text=True)
    assert '"validatorUrl": null' in html

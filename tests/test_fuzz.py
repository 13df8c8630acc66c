"""Property-based fuzz of the whole HTTP API from its own OpenAPI document (schemathesis).

Every operation gets generated requests as an admin, as a user and anonymously; checks: no
5xx, every response matches the documented schema, and its status code is documented.
`make test` runs a bounded, deterministic pass (FUZZ_EXAMPLES per operation, default 10);
`make fuzz` a long one.
"""

import json
import os
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from werkzeug import Response

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
LONG = EXAMPLES > 10


@schemathesis.check
def status_code_documented(ctx, response, case) -> None:
    """Every status code an operation answers is documented for it, not only covered by `default`."""
    documented = {code for code in case.operation.responses.status_codes if code != "default"}
    if str(response.status_code) not in documented:
        raise AssertionError(
            f"{case.operation.label} answered {response.status_code}; documented: {sorted(documented)}"
        )


CHECKS = [not_a_server_error, response_schema_conformance, status_code_documented]
# Not part of the JSON API: HTML pages and the spec itself.
SKIP_PATHS = {"/docs", "/redoc", "/openapi.json"}


def fuzz_settings():
    return settings(
        max_examples=EXAMPLES,
        derandomize=not LONG,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink] if LONG else [Phase.explicit, Phase.generate],
    )


def fuzz(app, headers: dict[str, dict], only: str | None = None) -> tuple[list, list[str]]:
    """Fuzz every operation (or those under `only`); returns the operations and the failures."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path not in SKIP_PATHS and (only is None or result.ok().path.startswith(only))
    ]
    failures = []

    for operation in operations:

        @fuzz_settings()
        @given(case=operation.as_strategy(), who=st.sampled_from(sorted(headers)))
        def run(case, who):
            case.call_and_validate(headers=headers[who], checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # collect all: one run shows every broken operation
            failures.append(f"{operation.method.upper()} {operation.path}:\n{exc}")
    return operations, failures


def serve_posts(httpserver) -> None:
    """The posts upstream on loopback (JSONPlaceholder shape), so the fuzz exercises real answers."""
    posts = [{"userId": 1 + i % 3, "id": i, "title": f"title {i}", "body": f"body {i}"} for i in range(1, 31)]
    by_id = {str(post["id"]): post for post in posts}

    def one(request):
        post = by_id.get(request.path.rsplit("/", 1)[-1])
        return Response(json.dumps(post or {}), status=200 if post else 404, content_type="application/json")

    httpserver.expect_request("/posts").respond_with_json(posts)
    httpserver.expect_request(re.compile(r"^/posts/[^/]+$")).respond_with_handler(one)


@pytest.mark.slow
def test_fuzz_the_api_from_its_openapi_document(app, admin, user, auth_headers, httpserver):
    serve_posts(httpserver)
    app.config["POSTS_API_URL"] = httpserver.url_for("/").rstrip("/")
    headers = {"admin": auth_headers(admin), "user": auth_headers(user), "anonymous": {}}
    operations, failures = fuzz(app, headers)
    assert len(operations) >= 5, "the OpenAPI document lists too few operations"
    assert not failures, "\n\n".join(failures)


def test_the_fuzzer_catches_a_server_error_and_a_wrong_schema(app):
    """The harness itself: a route that 500s, one that breaks its schema and one that answers an
    undocumented status code are all reported."""
    from flask.views import MethodView
    from flask_smorest import Blueprint
    from marshmallow import Schema, fields

    from project.extensions import api

    class Thing(Schema):
        name = fields.String(required=True)

    class Query(Schema):
        n = fields.Integer(required=True)

    broken = Blueprint("broken", __name__, url_prefix="/broken")

    @broken.route("/boom")
    class Boom(MethodView):
        @broken.arguments(Query, location="query")
        @broken.response(200, Thing)
        def get(self, args):
            """Fails for most inputs."""
            return 1 // (args["n"] - args["n"])

    @broken.route("/shape")
    class Shape(MethodView):
        @broken.response(200, {"type": "object", "required": ["name"]})
        def get(self):
            """Answers without the documented field."""
            return {"other": 1}

    @broken.route("/hidden")
    class Hidden(MethodView):
        @broken.response(200, Thing)
        def get(self):
            """Answers a status code its document does not list."""
            return {"name": "x"}, 404

    api.register_blueprint(broken)
    operations, failures = fuzz(app, {"anonymous": {}}, only="/broken")
    assert len(operations) == 3
    assert len(failures) == 3, failures
    assert any("/broken/boom" in f and "500" in f for f in failures), failures
    assert any("/broken/hidden" in f and "answered 404" in f for f in failures), failures

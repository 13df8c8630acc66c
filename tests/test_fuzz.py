"""Property-based fuzz of the whole HTTP API from its own OpenAPI document (schemathesis).

Every operation gets generated requests as an admin, as a user and anonymously; checks: no
5xx, every response matches the documented schema, and its status code is documented.
`make test` runs a bounded, deterministic pass (FUZZ_EXAMPLES per operation, default 10);
`make fuzz` a long one.

A second pass takes the same generated requests and puts hostile values in them (custom
hypothesis strategies): JSON text no encoder would produce (lone surrogates, NUL, integers of
hundreds or thousands of digits, NaN/Infinity, floats beyond the double range, deep nesting)
in one body field, and oversized numbers, NaN and NUL in one query parameter. A hostile body
must be a 422 in the error shape on every operation; a hostile query never a 5xx.
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

from project.inputs import MAX_INT_DIGITS, MAX_JSON_DEPTH

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


# Raw JSON texts for one value of a body: the app must refuse each with a 422.
HOSTILE_JSON = st.one_of(
    st.integers(MAX_INT_DIGITS + 1, 6000).map(lambda digits: "9" * digits),
    st.integers(310, 6000).map(lambda digits: "-" + "1" * digits + ".5"),  # beyond a double
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e309", "1" * 400 + "e-2"]),
    st.integers(0xD800, 0xDFFF).map(lambda code: f'"text \\u{code:04x} here"'),  # a lone surrogate
    st.text(max_size=5).map(lambda text: json.dumps(text + "\x00")),
    st.integers(MAX_JSON_DEPTH + 1, 3000).map(lambda depth: "[" * depth + "]" * depth),
)
HOSTILE_QUERY = st.one_of(
    st.integers(MAX_INT_DIGITS + 1, 6000).map(lambda digits: "9" * digits),
    st.sampled_from(["NaN", "Infinity", "-1e400", "1e400", "0x10", "1_000", "\x00", "１２"]),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
)
MARKER = "__hostile_value__"


def with_hostile_value(body, key: str | None) -> str:
    """The body as JSON text with one value (or the whole body) replaced by MARKER."""
    return json.dumps({**body, key: MARKER} if isinstance(body, dict) and key is not None else MARKER)


def fuzz_hostile(app, headers: dict[str, dict]) -> tuple[int, list[str]]:
    """Every operation, schemathesis' generated cases with hostile values put in; returns the
    number of requests sent and the failures."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    client = app.test_client()
    sent, failures = [0], []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in [op for op in operations if op.path not in SKIP_PATHS]:

        @fuzz_settings()
        @given(
            case=operation.as_strategy(),
            who=st.sampled_from(sorted(headers)),
            where=st.sampled_from(["body", "query"]),
            value=HOSTILE_JSON,
            query_value=HOSTILE_QUERY,
            pick=st.integers(0, 1000),
        )
        def run(case, who, where, value, query_value, pick):
            query = dict(case.query or {})
            data = None
            if where == "body":
                keys = sorted(case.body) if isinstance(case.body, dict) else []
                raw = with_hostile_value(case.body, keys[pick % len(keys)] if keys else None)
                data = raw.replace(json.dumps(MARKER), value)
            else:
                documented = [p.name for p in operation.query]  # noqa: B023 (run() runs in this iteration)
                names = sorted(query) or documented or ["page"]
                query[names[pick % len(names)]] = query_value
            response = client.open(
                case.formatted_path,
                method=case.method,
                query_string=query,
                headers=headers[who],
                data=data,
                content_type="application/json" if data is not None else None,
            )
            sent[0] += 1
            code = response.status_code
            if where == "body":
                body = response.get_json(silent=True) or {}
                assert code == 422 and body.get("code") == 422 and body.get("message"), (
                    f"{case.method} {case.formatted_path} with {data[:120]!r}: {code} {body}"
                )
            else:
                assert code < 500, f"{case.method} {case.formatted_path}?{query!r}: {code}"

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.method.upper()} {operation.path}:\n{exc}")
    return sent[0], failures


def serve_posts(httpserver) -> None:
    """The posts upstream on loopback (JSONPlaceholder shape), so the fuzz exercises real answers."""
    posts = [{"userId": 1 + i % 3, "id": i, "title": f"title {i}", "body": f"body {i}"} for i in range(1, 31)]
    by_id = {str(post["id"]): post for post in posts}

    def one(request):
        post = by_id.get(request.path.rsplit("/", 1)[-1])
        return Response(json.dumps(post or {}), status=200 if post else 404, content_type="application/json")

    httpserver.expect_request("/posts").respond_with_json(posts)
    httpserver.expect_request(re.compile(r"^/posts/[^/]+$")).respond_with_handler(one)


@pytest.fixture
def fuzz_headers(app, admin, user, auth_headers, httpserver) -> dict[str, dict]:
    """The three callers, with the posts upstream served on loopback."""
    serve_posts(httpserver)
    app.config["POSTS_API_URL"] = httpserver.url_for("/").rstrip("/")
    return {"admin": auth_headers(admin), "user": auth_headers(user), "anonymous": {}}


@pytest.mark.slow
def test_fuzz_the_api_from_its_openapi_document(app, fuzz_headers):
    operations, failures = fuzz(app, fuzz_headers)
    assert len(operations) >= 5, "the OpenAPI document lists too few operations"
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
def test_fuzz_every_operation_with_hostile_unicode_and_numbers(app, fuzz_headers):
    sent, failures = fuzz_hostile(app, fuzz_headers)
    assert sent >= 5 * EXAMPLES
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

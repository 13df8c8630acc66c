"""The OpenAPI document's conventions, in one place.

Every feature's blueprint is a `project.openapi.Blueprint`; on top of flask-smorest's it gives:

- `@blp.errors(404, (409, "SKU already taken."))`: the one way to document error answers. Each
  gets the error shape (`ErrorSchema`) as its schema, a description (the default below unless
  given) and its headers (`WWW-Authenticate` on 401, `Retry-After` on 429). The route guard
  (`auth_required`) documents its 401, and its 403 when it checks a role, through `document_auth()`.
- Answers documented on every operation without being written: 422 where arguments are parsed,
  400 and 413 where a request body is read, 429 on rate-limited blueprints. Anything else (500,
  503) is the `default` response, in the error shape too.
- `@blp.response(200, page_of(Schema))`: a page also gets its `Link` header (project.pagination).
- `@blp.cacheable_response(Schema)`: a cached GET's 200 with `X-Cache` and `ETag`, its 304 and the
  `If-None-Match` request header.

Operations name themselves with `@blp.doc(operationId="listProducts")` (tests/test_openapi.py
checks that every operation has one, and that they are unique).
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from http import HTTPStatus
from typing import Any, TypeVar

import flask_smorest
from flask import Flask

from project.errors import ErrorSchema
from project.inputs import StrictParser

F = TypeVar("F", bound=Callable[..., Any])

ERROR_DESCRIPTIONS = {
    400: "The request body is malformed (not JSON, or not the declared content type).",
    401: "Missing, invalid, expired or revoked token.",
    403: "Authenticated, but not allowed.",
    404: "Not found.",
    409: "Conflicts with the current state.",
    413: "The request body is larger than MAX_CONTENT_LENGTH.",
    422: "Validation failed; `errors` names the fields.",
    429: "Too many requests; retry after `Retry-After` seconds.",
    502: "The upstream API failed.",
    503: "A dependency (database, Redis, job queue) is down; try again later.",
}
ERROR_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": "`Bearer` (RFC 6750), with the error when a token was given.",
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
CACHE_HEADERS = {
    "X-Cache": {
        "description": "HIT: from the cache; MISS: computed for this request; STALE: the upstream "
        "failed and a cached copy is served (posts only).",
        "schema": {"type": "string", "enum": ["HIT", "MISS", "STALE"]},
    },
    "ETag": {
        "description": "The representation's tag; send it back in `If-None-Match` to get a 304.",
        "schema": {"type": "string"},
    },
}
IF_NONE_MATCH = {
    "in": "header",
    "name": "If-None-Match",
    "required": False,
    "description": "An `ETag` from an earlier answer: while it matches, the answer is a 304 with no body.",
    "schema": {"type": "string"},
}
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "OAuth2": {
        "type": "oauth2",
        "description": "The OAuth2 password flow: a form login at the token URL gives the bearer token.",
        "flows": {
            "password": {
                "tokenUrl": "/api/v1/auth/login",
                "refreshUrl": "/api/v1/auth/refresh",
                "scopes": {},
            }
        },
    },
}
# Either scheme: both end in `Authorization: Bearer <access token>`.
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"OAuth2": []}]
BODY_LOCATIONS = ("json", "form", "files")


def error_response(code: int, description: str | None = None) -> dict:
    """An error answer's documentation: the error shape, a description, its headers."""
    doc: dict[str, Any] = {
        "schema": ErrorSchema,
        "description": description or ERROR_DESCRIPTIONS.get(code) or HTTPStatus(code).phrase,
        "content_type": None,
    }
    if code in ERROR_HEADERS:
        doc["headers"] = ERROR_HEADERS[code]
    return doc


def _responses(func: Callable) -> dict:
    """The function's own copy of its documented responses (flask-smorest's `_apidoc` layout)."""
    func._apidoc = deepcopy(getattr(func, "_apidoc", {}))  # type: ignore[attr-defined]
    return func._apidoc.setdefault("response", {}).setdefault("responses", {})  # type: ignore[attr-defined]


def document_auth(func: F, checks_role: bool) -> F:
    """What the route guard adds to an operation's document: the security schemes, its 401 and,
    when it checks a role, its 403."""
    func = flask_smorest.Blueprint.doc(security=SECURITY)(func)
    if checks_role:
        return Blueprint.errors(401, (403, "Your role may not do this."))(func)
    return Blueprint.errors(401)(func)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with the project's documentation conventions (module docstring).

    `rate_limited=False` for a blueprint the limiter exempts (no 429 documented).
    """

    # Repeated query parameters and numbers given as text are a 422 (project/inputs.py).
    ARGUMENTS_PARSER = StrictParser()

    def __init__(self, *args: Any, rate_limited: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rate_limited = rate_limited
        self._prepare_doc_cbks.insert(0, self._prepare_implied_errors_doc)

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        """flask-smorest's `arguments`, with a schema class made an instance once, here: given
        the class, webargs builds an instance per request (a tenth of an order POST's CPU)."""
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)

    def response(self, status_code: Any, schema: Any = None, **kwargs: Any) -> Callable[[F], F]:
        """flask-smorest's `response`; a page (`page_of`) also gets its `Link` header, documented."""
        # Imported here: pagination needs the extensions, which need this module.
        from project.pagination import LINK_HEADER, is_page_schema, with_page_links

        if schema is None or not is_page_schema(schema):
            return super().response(status_code, schema, **kwargs)
        kwargs["headers"] = {**LINK_HEADER, **(kwargs.get("headers") or {})}
        smorest_response = super().response(status_code, schema, **kwargs)

        def decorator(func: F) -> F:
            return smorest_response(with_page_links(func))

        return decorator

    @staticmethod
    def errors(*answers: int | tuple[int, str]) -> Callable[[F], F]:
        """Document error answers: a status code, or (code, description)."""

        def decorator(func: F) -> F:
            responses = _responses(func)
            for answer in answers:
                code, description = answer if isinstance(answer, tuple) else (answer, None)
                responses.setdefault(code, []).append(error_response(code, description))
            return func

        return decorator

    def cacheable_response(self, schema: Any) -> Callable[[F], F]:
        """A cached GET: 200 with `X-Cache` and `ETag`, and 304 when `If-None-Match` matches."""

        def decorator(func: F) -> F:
            func = self.response(200, schema, headers=CACHE_HEADERS)(func)
            func = self.alt_response(
                304,
                description="Not Modified: `If-None-Match` matches the current `ETag`; no body.",
                headers={"ETag": CACHE_HEADERS["ETag"]},
            )(func)
            func._apidoc.setdefault("arguments", {}).setdefault("parameters", []).append(  # type: ignore[attr-defined]
                dict(IF_NONE_MATCH)
            )
            return func

        return decorator

    def _prepare_implied_errors_doc(self, doc: dict, doc_info: dict, **_kwargs: Any) -> dict:
        """Add the answers every operation of a kind can give (runs before the response doc)."""
        responses = doc_info.setdefault("response", {}).setdefault("responses", {})
        arguments = doc_info.get("arguments", {})
        reads_body = "requestBody" in doc_info.get("manual_doc", {}) or any(
            isinstance(p, dict) and p.get("in") in BODY_LOCATIONS for p in arguments.get("parameters", [])
        )
        # flask-smorest's own 422 for parsed arguments is a bare reference: ours replaces it.
        implied = [*arguments.pop("responses", {})]
        implied += ([400, 413] if reads_body else []) + ([429] if self.rate_limited else [])
        for code in implied:
            responses.setdefault(code, [error_response(code)])
        return doc


class Api(flask_smorest.Api):
    """flask-smorest's Api with our error shape, security schemes and nullable nested objects."""

    ERROR_SCHEMA = ErrorSchema

    def init_app(self, app: Flask, *, spec_kwargs: dict | None = None) -> None:
        super().init_app(app, spec_kwargs=spec_kwargs)
        for name, scheme in SECURITY_SCHEMES.items():
            self.spec.components.security_scheme(name, scheme)
        self.ma_plugin.converter.add_attribute_function(nullable_nested)


NULL_OBJECT = {"type": "object", "nullable": True}


def nullable_nested(self: Any, field: Any, ret: dict, **_kwargs: Any) -> dict:
    """A nullable nested object as `{allOf: [$ref], nullable: true}` (OpenAPI 3.0).

    apispec writes `anyOf: [{type: object, nullable: true}, $ref]`, whose null branch matches
    any object: generated clients then parse `SyncStatus.last_run` into an untyped dict.
    """
    any_of = ret.get("anyOf", [])
    if field.allow_none and NULL_OBJECT in any_of:
        del ret["anyOf"]
        return {"allOf": [branch for branch in any_of if branch != NULL_OBJECT], "nullable": True}
    return {}

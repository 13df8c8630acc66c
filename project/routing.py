"""URL converters and request guards shared by every blueprint.

`<dbint:name>` is an integer path segment in 1..2**31-1, the range of an INTEGER primary key.
Anything outside (0, huge numbers, negatives, non-digits) does not match the rule, so the
request is a plain 404 before any query runs: PostgreSQL raises on a bound value that does
not fit the column, which would otherwise surface as a 500.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from werkzeug.routing import IntegerConverter, Map

from project.errors import Unprocessable

DB_ID_MAX = 2**31 - 1


class DbIntConverter(IntegerConverter):
    """An `int` converter bounded to the database's INTEGER id range (documented in OpenAPI)."""

    def __init__(self, url_map: Map, *args, **kwargs) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", DB_ID_MAX)
        super().__init__(url_map, *args, **kwargs)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def reject_nul_characters() -> None:
    """PostgreSQL text cannot hold NUL (U+0000): refuse it in any input with a 422, once,
    rather than let one reach a query and fail there as a 500."""
    inputs: list[Any] = [
        request.path,
        *request.args.keys(),
        *(v for _, vs in request.args.lists() for v in vs),
    ]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        inputs += [*request.form.keys(), *(v for _, vs in request.form.lists() for v in vs)]
    elif request.is_json:
        inputs.append(request.get_json(silent=True))
    if any(_has_nul(value) for value in inputs):
        raise Unprocessable("Text must not contain the NUL character (\\u0000).")


def register_routing(app: Flask) -> None:
    """Must run before the blueprints are registered (their rules are compiled then)."""
    app.url_map.converters["dbint"] = DbIntConverter
    app.before_request(reject_nul_characters)

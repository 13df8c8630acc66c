"""URL converters shared by every blueprint.

`<dbint:name>` is an integer path segment in 1..2**31-1, the range of an INTEGER primary key.
Anything outside (0, huge numbers, negatives, non-digits) does not match the rule, so the
request is a plain 404 before any query runs: PostgreSQL raises on a bound value that does
not fit the column, which would otherwise surface as a 500.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

DB_ID_MAX = 2**31 - 1


class DbIntConverter(IntegerConverter):
    """An `int` converter bounded to the database's INTEGER id range (documented in OpenAPI)."""

    def __init__(self, url_map: Map, *args, **kwargs) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", DB_ID_MAX)
        super().__init__(url_map, *args, **kwargs)


def register_routing(app: Flask) -> None:
    """Must run before the blueprints are registered (their rules are compiled then)."""
    app.url_map.converters["dbint"] = DbIntConverter

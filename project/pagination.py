"""The one pagination schema and envelope.

Query: `page` (1-based, at most 10,000,000) and `per_page` (1..100); out of range is a 422,
never clamped.
Body: `{"items": [...], "page", "per_page", "total", "pages"}`; an empty list has `pages: 0`.
"""

from __future__ import annotations

import math

from marshmallow import EXCLUDE, Schema, fields, validate
from sqlalchemy import Select, func, select

from project.extensions import db

MAX_PER_PAGE = 100
# Far past any real list, and small enough that (page - 1) * per_page fits PostgreSQL's
# BIGINT OFFSET: a larger page is a 422, not a database error.
MAX_PAGE = 10_000_000


class PaginationArgs(Schema):
    """Base of every list's query schema; unknown query parameters are ignored."""

    class Meta:
        unknown = EXCLUDE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


def envelope(items: list, page: int, per_page: int, total: int) -> dict:
    return {
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": math.ceil(total / per_page) if total else 0,
    }


def paginate(stmt: Select, page: int, per_page: int) -> dict:
    """Run `stmt` (a 2.0-style select of one entity) for one page, and count its rows."""
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = db.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return envelope(list(items), page, per_page, total or 0)


_page_schemas: dict[type, type[Schema]] = {}


def page_of(item_schema: type[Schema]) -> type[Schema]:
    """The response schema of a page of `item_schema` (one class per item schema)."""
    if item_schema not in _page_schemas:
        name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
        _page_schemas[item_schema] = type(
            name,
            (Schema,),
            {
                "items": fields.List(fields.Nested(item_schema), required=True),
                "page": fields.Integer(required=True),
                "per_page": fields.Integer(required=True),
                "total": fields.Integer(required=True),
                "pages": fields.Integer(required=True),
            },
        )
    return _page_schemas[item_schema]

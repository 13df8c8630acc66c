"""The one pagination schema and envelope.

Query: `page` (1-based, at most 10,000,000) and `per_page` (1..100); out of range is a 422,
never clamped.
Body: `{"items": [...], "page", "per_page", "total", "pages"}`; an empty list has `pages: 0`.
Lists that count at most COUNT_LIMIT + 1 matches (products) add `total_relation`: "eq" when
`total` is exact, "gte" when more than COUNT_LIMIT match and `total` is COUNT_LIMIT, as
Elasticsearch's `track_total_hits` does.
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
# Counts stop here: past it a count would read every match for a figure nobody pages through.
COUNT_LIMIT = 10_000
TOTAL_RELATIONS = ("eq", "gte")


class PaginationArgs(Schema):
    """Base of every list's query schema; unknown query parameters are ignored."""

    class Meta:
        unknown = EXCLUDE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


def envelope(items: list, page: int, per_page: int, total: int, total_relation: str | None = None) -> dict:
    body = {
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": math.ceil(total / per_page) if total else 0,
    }
    if total_relation is not None:
        body["total_relation"] = total_relation
    return body


def capped_count(stmt: Select) -> Select:
    """COUNT of `stmt`'s rows that stops after COUNT_LIMIT + 1 of them (LIMIT in the
    subquery): enough to tell an exact total from "more than COUNT_LIMIT"."""
    return select(func.count()).select_from(stmt.order_by(None).limit(COUNT_LIMIT + 1).subquery())


def capped_total(count: int) -> tuple[int, str]:
    """(total, total_relation) of a count that may exceed COUNT_LIMIT (a capped count, or an
    exact one kept elsewhere): past COUNT_LIMIT the total is COUNT_LIMIT and "gte"."""
    return (COUNT_LIMIT, "gte") if count > COUNT_LIMIT else (count, "eq")


def paginate(stmt: Select, page: int, per_page: int) -> dict:
    """Run `stmt` (a 2.0-style select of one entity) for one page, and count its rows."""
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    items = db.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return envelope(list(items), page, per_page, total or 0)


CAPPED_TOTAL = {"description": f"Exact up to {COUNT_LIMIT:,}; see `total_relation`."}
_page_schemas: dict[tuple[type, bool], type[Schema]] = {}


def page_of(item_schema: type[Schema], capped: bool = False) -> type[Schema]:
    """The response schema of a page of `item_schema` (one class per item schema);
    `capped`: the list's count stops at COUNT_LIMIT (`capped_count`), so it has `total_relation`."""
    if (item_schema, capped) not in _page_schemas:
        name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
        body = {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "page": fields.Integer(required=True),
            "per_page": fields.Integer(required=True),
            "total": fields.Integer(required=True, metadata=CAPPED_TOTAL if capped else {}),
            "pages": fields.Integer(required=True),
        }
        if capped:
            body["total_relation"] = fields.String(
                required=True,
                validate=validate.OneOf(TOTAL_RELATIONS),
                metadata={
                    "description": f'"eq": `total` is exact; "gte": more than {COUNT_LIMIT:,} match '
                    f"and `total` is {COUNT_LIMIT:,} (`pages` follows it)."
                },
            )
        _page_schemas[item_schema, capped] = type(name, (Schema,), body)
    return _page_schemas[item_schema, capped]

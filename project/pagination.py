"""The one pagination schema and envelope.

Query: `page` (1-based, at most 10,000,000) and `per_page` (1..100); out of range is a 422,
never clamped.
Body: `{"items": [...], "page", "per_page", "total", "pages"}`; an empty list has `pages: 0`.
Header: an RFC 8288 `Link` with `first`, `prev`, `next` and `last` (each only where that page
exists), the request's URL with its other query parameters kept. `project.openapi.Blueprint`
adds it to every answer of a `page_of` schema; a cached page rebuilds it on a HIT from the
numbers it stored (`page_numbers`), so the stored bytes stay the body alone.
Lists that count at most COUNT_LIMIT + 1 matches (products) add `total_relation`: "eq" when
`total` is exact, "gte" when more than COUNT_LIMIT match and `total` is COUNT_LIMIT, as
Elasticsearch's `track_total_hits` does.
"""

from __future__ import annotations

import math
from functools import wraps
from typing import Any
from urllib.parse import quote, urlencode

from flask import g, request
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


def is_page_schema(schema: Any) -> bool:
    schema_class = schema if isinstance(schema, type) else type(schema)
    return schema_class in _page_schemas.values()


def link_header(page: int, per_page: int, pages: int) -> str | None:
    """RFC 8288 `Link` for page `page` of `pages`: first, prev, next and last where they exist
    (an empty list has only `first`), on this request's URL with its other parameters kept."""
    base = request.host_url.rstrip("/") + quote(request.script_root + request.path)
    others = [(k, v) for k, v in request.args.items(multi=True) if k not in ("page", "per_page")]

    def url(number: int) -> str:
        return base + "?" + urlencode([*others, ("page", number), ("per_page", per_page)])

    links = [(1, "first")]
    if page > 1:
        links.append((min(page - 1, max(pages, 1)), "prev"))
    if page < pages:
        links.append((page + 1, "next"))
    if pages:
        links.append((pages, "last"))
    return ", ".join(f'<{url(number)}>; rel="{rel}"' for number, rel in links)


def page_numbers() -> tuple[int, int, int] | None:
    """(page, per_page, pages) of the page this request answered, if it answered one."""
    return g.get("page_numbers")


def with_page_links(view):
    """Wrap a view that returns a page envelope: add its `Link` header (and remember the numbers
    for a response cache)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = view(*args, **kwargs)
        body, rest = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        if not isinstance(body, dict) or "pages" not in body:
            return result
        numbers = g.page_numbers = (body["page"], body["per_page"], body["pages"])
        status = rest[0] if rest else 200
        headers = dict(rest[1]) if len(rest) > 1 else {}
        headers["Link"] = link_header(*numbers)
        return body, status, headers

    return wrapper


LINK_HEADER = {
    "Link": {
        "description": "RFC 8288 links to the `first`, `prev`, `next` and `last` pages (each only "
        "where it exists), keeping the request's other query parameters: "
        '`<https://host/api/v1/products?page=3&per_page=20>; rel="next"`.',
        "schema": {"type": "string"},
    }
}

from __future__ import annotations

import re

from marshmallow import Schema, ValidationError, fields, validate

from project.fields import Money
from project.pagination import PaginationArgs
from project.products.models import SYNC_STATUSES

MAX_STOCK = 1_000_000_000
SORT_FIELDS = ("name", "price", "created_at", "stock")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def no_control_chars(value: str) -> None:
    if CONTROL_CHARS.search(value):
        raise ValidationError("Must not contain control characters.")


def not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


class ProductSchema(Schema):
    id = fields.Integer(required=True)
    sku = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    price = Money(required=True)
    stock = fields.Integer(required=True)
    category = fields.String(required=True, allow_none=True)
    external_id = fields.String(
        required=True, allow_none=True, metadata={"description": "The upstream catalogue's id, if synced."}
    )
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class ProductInSchema(Schema):
    """POST and PUT body; PATCH loads it with partial=True."""

    sku = fields.String(required=True, validate=[validate.Length(min=1, max=64), not_blank, no_control_chars])
    name = fields.String(required=True, validate=[validate.Length(min=1, max=255), not_blank])
    price = Money(required=True)
    stock = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0, max=MAX_STOCK))
    description = fields.String(load_default="", validate=validate.Length(max=10_000))
    category = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=100))


class StockDeltaSchema(Schema):
    delta = fields.Integer(strict=True, required=True, validate=validate.Range(min=-MAX_STOCK, max=MAX_STOCK))


class ProductListArgs(PaginationArgs):
    name = fields.String(validate=[validate.Length(min=1, max=255), no_control_chars])
    category = fields.String(validate=validate.Length(min=1, max=100))
    min_price = Money()
    max_price = Money()
    in_stock = fields.Boolean()
    sort_by = fields.String(load_default="created_at", validate=validate.OneOf(SORT_FIELDS))
    sort_order = fields.String(load_default="desc", validate=validate.OneOf(("asc", "desc")))


class ProductSearchArgs(PaginationArgs):
    q = fields.String(required=True, validate=[validate.Length(min=1, max=100), not_blank, no_control_chars])


class SyncRunSchema(Schema):
    job_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": list(SYNC_STATUSES)})
    started_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(required=True, allow_none=True)
    created = fields.Integer(required=True)
    updated = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    error = fields.String(required=True, allow_none=True)


class SyncStatusSchema(Schema):
    last_run = fields.Nested(
        SyncRunSchema, required=True, allow_none=True, metadata={"description": "null before the first sync."}
    )


class SyncJobSchema(Schema):
    job_id = fields.String(required=True)


class ProductPatchSchema(ProductInSchema):
    """PATCH body: any subset of the fields; no defaults are filled in."""

    def __init__(self, *args, **kwargs):
        kwargs["partial"] = True
        super().__init__(*args, **kwargs)

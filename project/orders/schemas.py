"""Request and response shapes of the orders API."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from project.fields import Money
from project.orders.models import ORDER_STATUSES
from project.pagination import PaginationArgs
from project.routing import DB_ID_MAX

MAX_ITEMS = 100
MAX_QUANTITY = 10_000


class OrderItemInSchema(Schema):
    product_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=DB_ID_MAX))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY))


class OrderCreateSchema(Schema):
    items = fields.List(
        fields.Nested(OrderItemInSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_ITEMS),
    )

    @validates_schema
    def no_duplicate_products(self, data: dict, **_kwargs) -> None:
        # Two lines of one product are refused, not merged: the client meant one of them.
        seen: set[int] = set()
        for item in data.get("items", []):
            if item["product_id"] in seen:
                raise ValidationError(f"Product {item['product_id']} appears more than once.", "items")
            seen.add(item["product_id"])


class IdempotencyHeaderSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=validate.Length(min=1, max=255),
        metadata={
            "description": "Optional. A repeat with the same key (per user) and body returns the "
            "first order with 202; the same key with another body is a 409."
        },
    )


class OrderItemSchema(Schema):
    product_id = fields.Integer(required=True)
    quantity = fields.Integer(required=True)
    unit_price = Money(required=True)


class OrderSchema(Schema):
    id = fields.Integer(required=True)
    user_id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null once the user is deleted."}
    )
    status = fields.String(required=True, metadata={"enum": list(ORDER_STATUSES)})
    items = fields.List(fields.Nested(OrderItemSchema), required=True)
    total = Money(required=True)
    failure_reason = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class OrderListArgsSchema(PaginationArgs):
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))
    user_id = fields.Integer(
        validate=validate.Range(min=1, max=DB_ID_MAX),
        metadata={"description": "Admins only; ignored for other users."},
    )

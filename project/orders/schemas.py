"""Request and response shapes of the orders API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from project.fields import Money
from project.orders.models import ORDER_STATUSES
from project.pagination import PaginationArgs
from project.routing import DB_ID_MAX

MAX_ITEMS = 100
MAX_QUANTITY = 10_000
CENTS = Decimal("0.01")


class OrderItemInSchema(Schema):
    product_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=DB_ID_MAX))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY))


ITEM_KEYS = frozenset(("product_id", "quantity"))


def plain_items(data: Any) -> list[dict] | None:
    """The items of a body in the common valid shape, checked in plain Python: a JSON object
    with only `items`, 1..MAX_ITEMS objects of exactly two ints in range, no product twice.
    None for anything else, which the declared fields then judge (and explain)."""
    if type(data) is not dict or data.keys() != {"items"}:
        return None
    items = data["items"]
    if type(items) is not list or not 1 <= len(items) <= MAX_ITEMS:
        return None
    seen: set[int] = set()
    for item in items:
        if type(item) is not dict or item.keys() != ITEM_KEYS:
            return None
        product_id, quantity = item["product_id"], item["quantity"]
        if type(product_id) is not int or type(quantity) is not int or product_id in seen:
            return None
        if not (1 <= product_id <= DB_ID_MAX and 1 <= quantity <= MAX_QUANTITY):
            return None
        seen.add(product_id)
    return [{"product_id": item["product_id"], "quantity": item["quantity"]} for item in items]


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

    def load(self, data: Any, *, many: bool | None = None, partial: Any = None, unknown: Any = None) -> Any:
        """A valid body in the common shape skips marshmallow (its load is a large part of a
        POST's CPU); anything else is loaded by the fields above, which answer the errors. The
        result is the same either way (tests/orders/test_fast_paths.py)."""
        items = plain_items(data) if not many and not partial else None
        if items is not None:
            return {"items": items}
        return super().load(data, many=many, partial=partial, unknown=unknown)


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


CREATED_KEYS = frozenset(
    ("id", "user_id", "status", "items", "total", "failure_reason", "created_at", "updated_at")
)


def _money(value: Decimal) -> float:
    return float(Decimal(value).quantize(CENTS))  # as Money serializes


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

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        """The new order's 202 (a dict of plain values from create_order) is written out
        directly, as the fields above would write it (tests/orders/test_fast_paths.py); an
        Order goes through the fields."""
        if many or type(obj) is not dict or not obj.keys() >= CREATED_KEYS:
            return super().dump(obj, many=many)
        return {
            "id": obj["id"],
            "user_id": obj["user_id"],
            "status": obj["status"],
            "items": [
                {
                    "product_id": i["product_id"],
                    "quantity": i["quantity"],
                    "unit_price": _money(i["unit_price"]),
                }
                for i in obj["items"]
            ],
            "total": _money(obj["total"]),
            "failure_reason": obj["failure_reason"],
            "created_at": obj["created_at"].isoformat(),
            "updated_at": obj["updated_at"].isoformat(),
        }


class OrderListArgsSchema(PaginationArgs):
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))
    user_id = fields.Integer(
        validate=validate.Range(min=1, max=DB_ID_MAX),
        metadata={"description": "Admins only; ignored for other users."},
    )

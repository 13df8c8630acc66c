"""The POST /orders fast paths (project/orders/schemas.py) answer exactly what marshmallow does.

`OrderCreateSchema.load` checks the common valid body in plain Python and leaves everything
else to the declared fields; `OrderSchema.dump` writes the new order's 202 dict directly.
Each is compared here with the marshmallow path it stands in for (Schema.load / Schema.dump).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from marshmallow import Schema, ValidationError

from project.orders.schemas import MAX_ITEMS, MAX_QUANTITY, OrderCreateSchema, OrderSchema, plain_items
from project.routing import DB_ID_MAX


def item(product_id=1, quantity=1, **extra):
    return {"product_id": product_id, "quantity": quantity, **extra}


VALID = [
    {"items": [item()]},
    {"items": [item(7, 3), item(2, MAX_QUANTITY), item(DB_ID_MAX, 1)]},
    {"items": [item(n + 1, 1) for n in range(MAX_ITEMS)]},
]
# Bodies the fast path must leave to marshmallow: some valid there, most not.
OTHERS = [
    None,
    [],
    "items",
    {},
    {"items": []},
    {"items": None},
    {"items": [item(n + 1, 1) for n in range(MAX_ITEMS + 1)]},
    {"items": [item()], "note": "x"},
    {"items": [item(extra=1)]},
    {"items": [{"product_id": 1}]},
    {"items": [item(True, 1)]},
    {"items": [item(1, True)]},
    {"items": [item(1.0, 1)]},
    {"items": [item("1", 1)]},
    {"items": [item(0, 1)]},
    {"items": [item(DB_ID_MAX + 1, 1)]},
    {"items": [item(1, 0)]},
    {"items": [item(1, MAX_QUANTITY + 1)]},
    {"items": [item(1, -1)]},
    {"items": [item(2, 1), item(2, 3)]},
    {"items": [[1, 1]]},
    {"items": ({"product_id": 1, "quantity": 1},)},
]


def stock_load(body):
    return Schema.load(OrderCreateSchema(), body)


@pytest.mark.parametrize("body", VALID)
def test_a_common_valid_body_takes_the_fast_path_with_marshmallows_result(body):
    assert plain_items(body) is not None
    assert OrderCreateSchema().load(body) == stock_load(body)


@pytest.mark.parametrize("body", OTHERS, ids=range(len(OTHERS)))
def test_anything_else_is_left_to_marshmallow_with_its_answer(body):
    assert plain_items(body) is None
    try:
        expected = stock_load(body)
    except ValidationError as exc:
        with pytest.raises(ValidationError) as raised:
            OrderCreateSchema().load(body)
        assert raised.value.messages == exc.messages
    else:
        assert OrderCreateSchema().load(body) == expected


NOW = datetime(2026, 12, 6, 5, 9, 49, 522522, tzinfo=UTC)
CREATED = [
    {
        "id": 1,
        "user_id": 2,
        "status": "pending",
        "idempotency_key": "k",
        "request_hash": "h",
        "created_at": NOW,
        "updated_at": NOW,
        "total": Decimal("4.50"),
        "failure_reason": None,
        "items": [item(1, 1, unit_price=Decimal("1.5")), item(2, 2, unit_price=Decimal("1.50"))],
    },
    {
        "id": 9_999_999,
        "user_id": None,
        "status": "reserved",
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "updated_at": NOW,
        "total": Decimal("9999999999.99"),
        "failure_reason": "x",
        "items": [item(3, MAX_QUANTITY, unit_price=Decimal("0.10"))],
    },
]


@pytest.mark.parametrize("order", CREATED)
def test_the_new_orders_202_is_written_as_the_fields_write_it(order):
    assert OrderSchema().dump(order) == Schema.dump(OrderSchema(), order)
    assert list(OrderSchema().dump(order)) == list(Schema.dump(OrderSchema(), order))

"""Orders: create (idempotent), read, pay and cancel.

Status changes and stock moves live in `state_machine.py`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select, text
from sqlalchemy.exc import IntegrityError

from project.database import utcnow
from project.errors import Conflict, NotFound, field_error
from project.extensions import db
from project.guard import Actor
from project.orders import state_machine
from project.orders.jobs import Drain, request_drain
from project.orders.models import Order, OrderItem
from project.pagination import paginate
from project.products import stock

log = logging.getLogger(__name__)

# Numeric(12, 2) holds below 10**10.
MAX_TOTAL = Decimal("9999999999.99")

# Built once: composing a statement per request costs more CPU than running it.
# (Mapped classes' __table__ is typed as a FromClause; these are Tables.)
_orders, _items = (cast(Table, model.__table__) for model in (Order, OrderItem))
_INSERT_ORDER = insert(_orders).returning(_orders.c.id)
_INSERT_ITEMS = insert(_items)
# PostgreSQL: the order and its already-priced lines in one statement (every data-modifying
# WITH runs to completion). The lines go in in the request's order: their ids give the order's
# `items` order. SQLite has no INSERT in a WITH.
_INSERT_ORDER_WITH_LINES = text("""
WITH new_order AS (
    INSERT INTO orders (user_id, status, total, idempotency_key, request_hash, created_at, updated_at)
    VALUES (:user_id, :status, :total, :idempotency_key, :request_hash, :created_at, :updated_at)
    RETURNING id
), new_lines AS (
    INSERT INTO order_items (order_id, product_id, quantity, unit_price)
    SELECT new_order.id, line.product_id, line.quantity, line.unit_price
    FROM new_order CROSS JOIN unnest(
        CAST(:product_ids AS integer[]), CAST(:quantities AS integer[]), CAST(:unit_prices AS numeric[])
    ) WITH ORDINALITY AS line (product_id, quantity, unit_price, position)
    ORDER BY line.position
)
SELECT id FROM new_order
""")


def create_order(user_id: int, items: list[dict], idempotency_key: str | None = None) -> dict[str, Any]:
    """Store a pending order with the current unit prices, then queue its reservation; returns
    the order as a dict of OrderSchema's fields.

    With an idempotency key, a repeat of the same body returns the first order and another
    body is a 409; two concurrent firsts meet at the unique (user_id, key) constraint.
    """
    request_hash = _request_hash(items) if idempotency_key else None
    if idempotency_key:
        existing = _by_key(user_id, idempotency_key)
        if existing is not None:
            return _replay(existing, request_hash)
        # The lookup's read ends here: the session would otherwise keep its connection idle in
        # a transaction while the create holds another (behind PgBouncer in transaction mode,
        # a second server connection for every keyed POST).
        db.session.commit()

    now = utcnow()
    row = {
        "user_id": user_id,
        "status": "pending",
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "created_at": now,
        "updated_at": now,
    }
    # One Core transaction, read to write: two statements need none of the ORM session's
    # machinery (identity map, flush, its own commit).
    try:
        with db.engine.begin() as connection:
            prices = stock.live_prices((item["product_id"] for item in items), connection)
            lines, total = _priced(items, prices)
            order_id = _insert(connection, row, lines, total)
    except IntegrityError:
        winner = _by_key(user_id, idempotency_key) if idempotency_key else None
        if winner is None:
            raise
        return _replay(winner, request_hash)

    # Committed first: if Redis is down the order waits for requeue_lost_orders.
    drain = request_drain()
    if drain is Drain.DOWN:
        log.warning("order %s stored, its reservation not queued (Redis down)", order_id)
    elif drain is Drain.INLINE:  # reserved (or failed) in this request already
        return as_dict(db.session.get_one(Order, order_id))
    # The 202's fields from what was written: no re-read, and no ORM objects to build.
    return {"id": order_id, **row, "total": total, "failure_reason": None, "items": lines}


def as_dict(order: Order) -> dict[str, Any]:
    """OrderSchema's fields of a stored order, as `create_order` returns a new one."""
    return {
        "id": order.id,
        "user_id": order.user_id,
        "status": order.status,
        "idempotency_key": order.idempotency_key,
        "request_hash": order.request_hash,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "total": order.total,
        "failure_reason": order.failure_reason,
        "items": [
            {"product_id": item.product_id, "quantity": item.quantity, "unit_price": item.unit_price}
            for item in order.items
        ],
    }


def _priced(items: list[dict], prices: dict[int, Decimal]) -> tuple[list[dict], Decimal]:
    """The order lines at `prices` (those of live products) and their total; 422 for a product
    without a price (unknown or deleted) or a total over MAX_TOTAL."""
    missing = [str(item["product_id"]) for item in items if item["product_id"] not in prices]
    if missing:
        raise field_error("items", f"Unknown or deleted product(s): {', '.join(missing)}.")
    lines = [
        {"product_id": i["product_id"], "quantity": i["quantity"], "unit_price": prices[i["product_id"]]}
        for i in items
    ]
    total = sum((line["unit_price"] * line["quantity"] for line in lines), Decimal("0.00"))
    if total > MAX_TOTAL:
        raise field_error("items", f"The order total must not exceed {MAX_TOTAL}.")
    return lines, total


def _insert(connection: Connection, row: dict, lines: list[dict], total: Decimal) -> int:
    """Write the order and its already-priced lines (in the request's order: their ids give the
    order's `items` order) in the caller's transaction; returns the order's id. No rule is
    checked here (`_priced` did): this is the only place the databases differ, one statement
    on PostgreSQL, two on SQLite."""
    if connection.dialect.name == "postgresql":
        order_id = connection.execute(
            _INSERT_ORDER_WITH_LINES,
            {
                **row,
                "total": total,
                "product_ids": [line["product_id"] for line in lines],
                "quantities": [line["quantity"] for line in lines],
                "unit_prices": [line["unit_price"] for line in lines],
            },
        ).scalar_one()
    else:
        order_id = connection.execute(_INSERT_ORDER, {**row, "total": total}).scalar_one()
        connection.execute(_INSERT_ITEMS, [{"order_id": order_id, **line} for line in lines])
    return order_id


def _request_hash(items: list[dict]) -> str:
    canonical = sorted((i["product_id"], i["quantity"]) for i in items)
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


def _by_key(user_id: int, key: str) -> Order | None:
    return db.session.scalars(
        select(Order).where(Order.user_id == user_id, Order.idempotency_key == key)
    ).first()


def _replay(order: Order, request_hash: str | None) -> dict[str, Any]:
    if order.request_hash != request_hash:
        raise Conflict(
            "This Idempotency-Key was already used with a different request body.",
            error="idempotency_key_reused",
        )
    return as_dict(order)


def get_order(order_id: int, viewer: Actor) -> Order:
    """The order if the viewer owns it or is an admin; otherwise 404 (no existence leak)."""
    order = db.session.get(Order, order_id)
    if order is None or not (viewer.is_admin or order.user_id == viewer.id):
        raise NotFound("Order not found.")
    return order


def list_orders(
    viewer: Actor,
    page: int,
    per_page: int,
    status: str | None = None,
    user_id: int | None = None,
) -> dict:
    stmt = select(Order).order_by(Order.created_at.desc(), Order.id.desc())
    if not viewer.is_admin:
        stmt = stmt.where(Order.user_id == viewer.id)
    elif user_id is not None:
        stmt = stmt.where(Order.user_id == user_id)
    if status is not None:
        stmt = stmt.where(Order.status == status)
    return paginate(stmt, page, per_page)


def pay_order(order_id: int, viewer: Actor) -> Order:
    get_order(order_id, viewer)
    return state_machine.pay(order_id)


def cancel_order(order_id: int, viewer: Actor) -> Order:
    get_order(order_id, viewer)
    return state_machine.cancel(order_id)

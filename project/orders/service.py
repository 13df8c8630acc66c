"""Orders: create (idempotent), read, pay and cancel.

Status changes and stock moves live in `state_machine.py`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from decimal import Decimal
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError

from project.database import autocommit_connection, utcnow
from project.errors import Conflict, NotFound, field_error
from project.extensions import db
from project.guard import Actor
from project.orders import state_machine
from project.orders.jobs import request_drain
from project.orders.models import Order, OrderItem
from project.pagination import paginate
from project.products.models import Product

log = logging.getLogger(__name__)

# Numeric(12, 2) holds below 10**10.
MAX_TOTAL = Decimal("9999999999.99")

# Built once: composing a statement per request cost more CPU than running it.
# (Mapped classes' __table__ is typed as a FromClause; these are Tables.)
_products, _orders, _items = (cast(Table, model.__table__) for model in (Product, Order, OrderItem))
_PRICES = select(_products.c.id, _products.c.price).where(
    _products.c.id.in_(bindparam("ids", expanding=True)), _products.c.deleted_at.is_(None)
)
_INSERT_ORDER = insert(_orders).returning(_orders.c.id)
_INSERT_ITEMS = insert(_items)
# PostgreSQL runs every data-modifying WITH to completion; the lines go in in the request's
# order (their ids give the order's `items` order). SQLite has no INSERT in a WITH.
_CREATE_ORDER = text("""
WITH line AS (
    SELECT l.product_id, l.quantity, l.position, p.price AS unit_price
    FROM unnest(CAST(:product_ids AS integer[]), CAST(:quantities AS integer[]))
        WITH ORDINALITY AS l (product_id, quantity, position)
    JOIN products p ON p.id = l.product_id AND p.deleted_at IS NULL
), new_order AS (
    INSERT INTO orders (user_id, status, total, idempotency_key, request_hash, created_at, updated_at)
    SELECT :user_id, :status, sum(unit_price * quantity), :idempotency_key, :request_hash,
        :created_at, :updated_at
    FROM line
    HAVING count(*) = :count AND sum(unit_price * quantity) <= :max_total
    RETURNING id
), new_lines AS (
    INSERT INTO order_items (order_id, product_id, quantity, unit_price)
    SELECT new_order.id, line.product_id, line.quantity, line.unit_price
    FROM new_order CROSS JOIN line
    ORDER BY line.position
)
SELECT line.product_id, line.unit_price, (SELECT id FROM new_order) AS order_id FROM line
""")


def create_order(user_id: int, items: list[dict], idempotency_key: str | None = None) -> Order | dict:
    """Store a pending order with the current unit prices, then queue its reservation; returns
    the order (an Order, or a dict of OrderSchema's fields when it is new).

    With an idempotency key, a repeat of the same body returns the first order and another
    body is a 409; two concurrent firsts meet at the unique (user_id, key) constraint.
    """
    request_hash = _request_hash(items) if idempotency_key else None
    if idempotency_key:
        existing = _by_key(user_id, idempotency_key)
        if existing is not None:
            return _replay(existing, request_hash)

    now = utcnow()
    row = {
        "user_id": user_id,
        "status": "pending",
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "created_at": now,
        "updated_at": now,
    }
    try:
        if db.engine.dialect.name == "postgresql":
            order_id, prices = _insert_in_one_statement(row, items)
            lines, total = _priced(items, prices)  # the 422 of a refused insert
        else:
            lines, total = _priced(items, _current_prices([item["product_id"] for item in items]))
            order_id = _insert(row, lines, total)
    except IntegrityError:
        db.session.rollback()
        winner = _by_key(user_id, idempotency_key) if idempotency_key else None
        if winner is None:
            raise
        return _replay(winner, request_hash)

    # Committed first: if Redis is down the order waits for requeue_lost_orders.
    drain = request_drain()
    if drain == "down":
        log.warning("order %s stored, its reservation not queued (Redis down)", order_id)
    elif drain == "inline":  # reserved (or failed) in this request already
        return db.session.get_one(Order, order_id)
    # The 202's fields from what was written: no re-read, and no ORM objects to build (they
    # were 7% of a POST's CPU).
    return {"id": order_id, **row, "total": total, "failure_reason": None, "items": lines}


def _priced(items: list[dict], prices: dict[int, Decimal]) -> tuple[list[dict], Decimal]:
    """The order lines at `prices` and their total; 422 for a product without a price (unknown
    or deleted) or a total over MAX_TOTAL."""
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


def _insert(row: dict, lines: list[dict], total: Decimal) -> int:
    """The order and its lines: two Core statements and the commit (no unit-of-work flush: it
    was a fifth of a POST's CPU)."""
    order_id = db.session.execute(_INSERT_ORDER, {**row, "total": total}).scalar_one()
    db.session.execute(_INSERT_ITEMS, [{"order_id": order_id, **line} for line in lines])
    db.session.commit()
    return order_id


def _insert_in_one_statement(row: dict, items: list[dict]) -> tuple[int | None, dict[int, Decimal]]:
    """PostgreSQL: read the prices and insert the order and its lines in ONE statement, in
    autocommit: one round trip where `_insert` takes five (BEGIN, the prices, two INSERTs,
    COMMIT). It inserts nothing unless every product is live and the total fits; returns the new
    order's id (None if refused) and the prices it found."""
    params = {
        **row,
        "product_ids": [item["product_id"] for item in items],
        "quantities": [item["quantity"] for item in items],
        "count": len(items),
        "max_total": MAX_TOTAL,
    }
    with autocommit_connection() as connection:
        rows = connection.execute(_CREATE_ORDER, params).all()
    return (rows[0].order_id if rows else None), {r.product_id: r.unit_price for r in rows}


def _request_hash(items: list[dict]) -> str:
    canonical = sorted((i["product_id"], i["quantity"]) for i in items)
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


def _by_key(user_id: int, key: str) -> Order | None:
    return db.session.scalars(
        select(Order).where(Order.user_id == user_id, Order.idempotency_key == key)
    ).first()


def _replay(order: Order, request_hash: str | None) -> Order:
    if order.request_hash != request_hash:
        raise Conflict(
            "This Idempotency-Key was already used with a different request body.",
            error="idempotency_key_reused",
        )
    return order


def _current_prices(product_ids: list[int]) -> dict[int, Decimal]:
    """The prices of those products that are live."""
    return {row.id: row.price for row in db.session.execute(_PRICES, {"ids": product_ids})}


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

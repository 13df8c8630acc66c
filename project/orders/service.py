"""Orders: create (idempotent), read, pay and cancel.

Status changes and stock moves live in `state_machine.py`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from decimal import Decimal
from typing import cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from project.database import utcnow
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

    prices = _current_prices([item["product_id"] for item in items])
    lines = [
        {"product_id": i["product_id"], "quantity": i["quantity"], "unit_price": prices[i["product_id"]]}
        for i in items
    ]
    total = sum((line["unit_price"] * line["quantity"] for line in lines), Decimal("0.00"))
    if total > MAX_TOTAL:
        raise field_error("items", f"The order total must not exceed {MAX_TOTAL}.")
    now = utcnow()
    row = {
        "user_id": user_id,
        "status": "pending",
        "total": total,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "created_at": now,
        "updated_at": now,
    }
    # Core statements, not a unit-of-work flush: the flush was a fifth of a POST's CPU.
    try:
        order_id = db.session.execute(_INSERT_ORDER, row).scalar_one()
        db.session.execute(_INSERT_ITEMS, [{"order_id": order_id, **line} for line in lines])
        db.session.commit()
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
    return {"id": order_id, **row, "failure_reason": None, "items": lines}


def _request_hash(items: list[dict]) -> str:
    canonical = sorted((i["product_id"], i["quantity"]) for i in items)
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


def _by_key(user_id: int, key: str) -> Order | None:
    return db.session.scalars(
        select(Order).where(Order.user_id == user_id, Order.idempotency_key == key)
    ).first()


def _replay(order: Order, request_hash: str | None) -> Order:
    if order.request_hash != request_hash:
        raise Conflict("This Idempotency-Key was already used with a different request body.")
    return order


def _current_prices(product_ids: list[int]) -> dict[int, Decimal]:
    rows = db.session.execute(_PRICES, {"ids": product_ids}).all()
    prices = {row.id: row.price for row in rows}
    missing = [pid for pid in product_ids if pid not in prices]
    if missing:
        names = ", ".join(str(pid) for pid in missing)
        raise field_error("items", f"Unknown or deleted product(s): {names}.")
    return prices


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

"""The order state machine: each transition is one transaction, stock moves included.

    pending -> reserved | failed | cancelled;  reserved -> paid | cancelled

Every transition locks its orders (`SELECT ... FOR UPDATE` on PostgreSQL) and then moves the
status with a conditional UPDATE (`WHERE status IN (...)`), so it is race-safe on SQLite too:
of two concurrent transitions from one status only one changes a row. Stock moves through
`project.products.stock` (products locked in id order: no deadlocks between orders) inside
the same transaction as the status change: all items or none, exactly once.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Row, Table, bindparam, case, func, select, update
from sqlalchemy.orm import joinedload

from project.database import rowcount, utcnow
from project.errors import Conflict
from project.extensions import db
from project.orders.models import Order, OrderItem
from project.products import stock
from project.products.service import invalidate_cache as invalidate_product_cache

log = logging.getLogger(__name__)

BATCH_SIZE = 500


class RowsChanged(Exception):
    """A guarded write of `settle` found rows changed under it (SQLite has no row locks);
    nothing was written."""


def _lock(order_id: int) -> Order | None:
    """The order, its row locked until commit/rollback, its attributes and items read afresh
    (in the same query)."""
    stmt = (
        select(Order)
        .where(Order.id == order_id)
        .options(joinedload(Order.items))
        .with_for_update(of=Order)
        .execution_options(populate_existing=True)
    )
    return db.session.scalars(stmt).unique().first()


def _move(
    order_ids: Sequence[int],
    from_statuses: tuple[str, ...],
    to_status: str,
    now: datetime | None = None,
    **values,
) -> bool:
    """Move those orders to `to_status` if each is still in one of `from_statuses`; no commit.
    False if any was not (the caller rolls back)."""
    if not order_ids:
        return True
    result = db.session.execute(
        update(Order)
        .where(Order.id.in_(order_ids), Order.status.in_(from_statuses))
        .values(status=to_status, updated_at=now or utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == len(order_ids)


def _shortfall_message(product_id: int, quantity: int, name: str | None, available: int) -> str:
    """Why an order failed; `name` None: the product is deleted."""
    if name is None:
        return f"Product {product_id} is no longer available."
    message = (
        f"Not enough stock for product {product_id} ({name}): {quantity} requested, {available} available."
    )
    return message[:255]


# The reservation's statements, built once (Core: no unit of work, no identity map).
_orders, _items = (cast(Table, model.__table__) for model in (Order, OrderItem))
_NEXT_PENDING = (
    select(_orders.c.id)
    .where(_orders.c.status == "pending")
    .order_by(_orders.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_LINES_OF = (
    select(_items.c.order_id, _items.c.product_id, _items.c.quantity)
    .where(_items.c.order_id.in_(bindparam("ids", expanding=True)))
    .order_by(_items.c.order_id, _items.c.product_id)
)


def lock_pending(limit: int) -> list[int]:
    """The ids of the oldest `limit` pending orders that no other transaction holds, locked
    (FOR UPDATE SKIP LOCKED on PostgreSQL: concurrent drains take disjoint batches); [] when
    none is left (the transaction is then closed)."""
    order_ids = list(db.session.scalars(_NEXT_PENDING, {"limit": limit}))
    if not order_ids:
        db.session.rollback()
    return order_ids


def reserve_batch(limit: int) -> int:
    """Reserve or fail up to `limit` pending orders, oldest first, in one transaction (commits);
    returns how many it settled (0: none pending). Raises RowsChanged (see `settle`)."""
    order_ids = lock_pending(limit)
    return settle(order_ids) if order_ids else 0


def settle(order_ids: list[int]) -> int:
    """Reserve or fail those pending orders, locked by `lock_pending`, in this transaction, and
    commit; returns how many (all of them). Each order takes the stock of all its items or
    none, the older order first; one that cannot is failed with the shortfall. Raises
    RowsChanged, after a rollback, if a guarded write found rows changed under it.
    The product-cache bump is the caller's (a drain bumps once per commit)."""
    lines = db.session.execute(_LINES_OF, {"ids": order_ids}).all()
    on_hand = stock.lock_live({line.product_id for line in lines})
    reserved, failed, taken = _decide(order_ids, lines, on_hand)
    now = utcnow()
    written = (
        stock.take(taken)
        and _move(reserved, ("pending",), "reserved", now, reserved_at=now)
        and _move(list(failed), ("pending",), "failed", now, failure_reason=case(failed, value=Order.id))
    )
    if not written:
        db.session.rollback()
        raise RowsChanged
    db.session.commit()
    for order_id, reason in failed.items():
        log.info("order %s failed: %s", order_id, reason)
    return len(order_ids)


def _decide(
    order_ids: list[int], lines: Sequence[Row], on_hand: dict[int, stock.OnHand]
) -> tuple[list[int], dict[int, str], dict[int, int]]:
    """Decide from the locked stock, oldest order first, which orders take their items and
    which fail, and why. Returns (reserved ids, {failed id: reason}, {product id: units taken})."""
    left = {product_id: row.stock for product_id, row in on_hand.items()}
    lines_of: dict[int, list[Row]] = defaultdict(list)
    for line in lines:  # in product-id order within an order
        lines_of[line.order_id].append(line)
    reserved: list[int] = []
    failed: dict[int, str] = {}
    taken: Counter[int] = Counter()
    for order_id in order_ids:
        items = lines_of[order_id]
        short = next((line for line in items if left.get(line.product_id, -1) < line.quantity), None)
        if short is None:
            for line in items:
                left[line.product_id] -= line.quantity
                taken[line.product_id] += line.quantity
            reserved.append(order_id)
        else:
            product = on_hand.get(short.product_id)
            name, available = (product.name, left[short.product_id]) if product else (None, 0)
            failed[order_id] = _shortfall_message(short.product_id, short.quantity, name, available)
    return reserved, failed, dict(taken)


def fail(order_id: int, reason: str) -> str | None:
    """Mark a still-pending order failed (commits); returns its final status."""
    order = _lock(order_id)
    if order is None or not _move([order_id], ("pending",), "failed", failure_reason=reason):
        db.session.rollback()
        return order.status if order else None
    db.session.commit()
    log.info("order %s failed: %s", order_id, reason)
    return "failed"


def cancel(order_id: int, allowed: tuple[str, ...] = ("pending", "reserved"), reason=None) -> Order:
    """Cancel the order, returning its reserved stock in the same transaction; 409 otherwise."""
    order = _lock(order_id)
    if order is None or order.status not in allowed:
        status = order.status if order else "gone"
        db.session.rollback()
        raise Conflict(f"A {status} order cannot be cancelled.", error="illegal_transition")
    previous = order.status
    if not _move([order_id], (previous,), "cancelled", failure_reason=reason):
        db.session.rollback()
        raise Conflict("The order changed meanwhile and cannot be cancelled.", error="illegal_transition")
    if previous == "reserved":
        stock.give_back({item.product_id: item.quantity for item in order.items})
    db.session.commit()
    if previous == "reserved":
        invalidate_product_cache()
    return db.session.get_one(Order, order_id, populate_existing=True)


def pay(order_id: int) -> Order:
    order = _lock(order_id)
    if order is None or order.status != "reserved":
        status = order.status if order else "gone"
        db.session.rollback()
        raise Conflict(
            f"A {status} order cannot be paid; only a reserved one can.", error="illegal_transition"
        )
    if not _move([order_id], ("reserved",), "paid"):
        db.session.rollback()
        raise Conflict("The order changed meanwhile and cannot be paid.", error="illegal_transition")
    db.session.commit()
    return db.session.get_one(Order, order_id, populate_existing=True)


def expire_older_than(ttl_minutes: int, now: datetime | None = None) -> int:
    """Cancel reserved orders older than the TTL (the cancel path: stock back once)."""
    cutoff = (now or utcnow()) - timedelta(minutes=ttl_minutes)
    # updated_at equals reserved_at for a reserved order; it lets the status index serve.
    ids = db.session.scalars(
        select(Order.id)
        .where(Order.status == "reserved", Order.updated_at < cutoff, Order.reserved_at < cutoff)
        .order_by(Order.id)
        .limit(BATCH_SIZE)
    ).all()
    expired = 0
    for order_id in ids:
        try:
            cancel(order_id, allowed=("reserved",), reason="Reservation expired before payment.")
        except Conflict:
            continue  # paid or cancelled meanwhile
        expired += 1
    if expired:
        log.info("expired %s reservations", expired)
    return expired


def stale_pending_ids(older_than: datetime) -> list[int]:
    """Pending orders created before `older_than`: candidates whose job may be lost."""
    ids = db.session.scalars(
        select(Order.id)
        .where(Order.status == "pending", Order.updated_at < older_than)
        .order_by(Order.id)
        .limit(BATCH_SIZE)
    ).all()
    db.session.rollback()
    return list(ids)


def reserved_units(product_id: ColumnElement[int]) -> ColumnElement[int]:
    """Units that reserved orders hold of a product (a correlated subquery on `product_id`).

    Installed as the catalogue's held-units hook: the sync must not write them back.
    """
    return (
        select(func.coalesce(func.sum(OrderItem.quantity), 0))
        .join(Order, Order.id == OrderItem.order_id)
        .where(OrderItem.product_id == product_id, Order.status == "reserved")
        .scalar_subquery()
    )

"""The order state machine: each transition is one transaction, stock moves included.

    pending -> reserved | failed | cancelled;  reserved -> paid | cancelled

Every transition locks the order row (`SELECT ... FOR UPDATE` on PostgreSQL) and then moves
the status with a conditional UPDATE (`WHERE status IN (...)`), so it is race-safe on SQLite
too: of two concurrent transitions from one status only one changes a row. Stock moves with
one conditional UPDATE per item, in product-id order (no deadlocks between orders), inside
the same transaction as the status change: all items or none, exactly once.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, Row, Table, Update, bindparam, case, func, select, update
from sqlalchemy.orm import joinedload

from project.database import rowcount, utcnow
from project.errors import Conflict
from project.extensions import db
from project.orders.models import Order, OrderItem
from project.products.models import Product
from project.products.service import invalidate_cache as invalidate_product_cache

log = logging.getLogger(__name__)

BATCH_SIZE = 500


def _lock(order_id: int) -> Order | None:
    """The order, its row locked until commit/rollback, its attributes and items read afresh
    (in the same query: one round trip fewer on the reservation path)."""
    return _lock_where(Order.id == order_id)


def _lock_where(condition: ColumnElement[bool]) -> Order | None:
    stmt = (
        select(Order)
        .where(condition)
        .options(joinedload(Order.items))
        .with_for_update(of=Order)
        .execution_options(populate_existing=True)
    )
    return db.session.scalars(stmt).unique().first()


def _move(order_id: int, from_statuses: Iterable[str], to_status: str, **values) -> bool:
    """Move the order to `to_status` if it is still in one of `from_statuses`; no commit."""
    result = db.session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status.in_(tuple(from_statuses)))
        .values(status=to_status, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def _by_product(items: Iterable[OrderItem]) -> list[OrderItem]:
    return sorted(items, key=lambda item: item.product_id)


def _take(item: OrderItem) -> bool:
    result = db.session.execute(
        update(Product)
        .where(
            Product.id == item.product_id,
            Product.stock >= item.quantity,
            Product.deleted_at.is_(None),
        )
        .values(stock=Product.stock - item.quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def _give_back(item: OrderItem) -> None:
    db.session.execute(
        update(Product)
        .where(Product.id == item.product_id)
        .values(stock=Product.stock + item.quantity, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def _shortfall_reason(item: OrderItem) -> str:
    product = db.session.get(Product, item.product_id, populate_existing=True)
    if product is None or product.deleted_at is not None:
        return _shortfall_message(item.product_id, item.quantity, None, 0)
    return _shortfall_message(item.product_id, item.quantity, product.name, product.stock)


def _shortfall_message(product_id: int, quantity: int, name: str | None, available: int) -> str:
    """Why an order failed; `name` None: the product is deleted."""
    if name is None:
        return f"Product {product_id} is no longer available."
    message = (
        f"Not enough stock for product {product_id} ({name}): {quantity} requested, {available} available."
    )
    return message[:255]


def lock_next_pending() -> Order | None:
    """The oldest pending order that no other transaction holds, locked (FOR UPDATE SKIP
    LOCKED on PostgreSQL: concurrent drains never take the same order); None when none is left
    (the transaction is then closed)."""
    next_id = (
        select(Order.id)
        .where(Order.status == "pending")
        .order_by(Order.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    order = _lock_where(Order.id == next_id)
    if order is None:
        db.session.rollback()
    return order


# The batch path's statements, built once (Core: no unit of work, no identity map).
_orders, _items, _products = (cast(Table, model.__table__) for model in (Order, OrderItem, Product))
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
# NO KEY UPDATE, as an UPDATE takes: new order lines (a foreign key's KEY SHARE) still go in.
_LOCK_PRODUCTS = (
    select(_products.c.id, _products.c.name, _products.c.stock, _products.c.deleted_at)
    .where(_products.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_products.c.id)
    .with_for_update(key_share=True)
)


def reserve_batch(limit: int) -> int | None:
    """Reserve or fail up to `limit` pending orders, oldest first, in one transaction (commits).

    The rules of `reserve_locked`, order by order: each order takes the stock of all its items
    or none, the older order first; one that cannot is failed with the shortfall. The locks are
    taken as every transition takes them: the orders (SKIP LOCKED: concurrent drains take
    disjoint batches), then their products in id order. Six statements for the whole batch.
    Returns how many orders it settled (0: none pending), or None if a guarded write found rows
    changed under it (SQLite has no row locks): nothing is written then.
    """
    order_ids = list(db.session.scalars(_NEXT_PENDING, {"limit": limit}))
    if not order_ids:
        db.session.rollback()
        return 0
    lines = db.session.execute(_LINES_OF, {"ids": order_ids}).all()
    product_ids = sorted({line.product_id for line in lines})
    products = {row.id: row for row in db.session.execute(_LOCK_PRODUCTS, {"ids": product_ids})}
    reserved, failed, taken = _settle(order_ids, lines, products)

    now = utcnow()
    writes: list[tuple[Update, int]] = []
    if taken:
        units = case(taken, value=_products.c.id)
        writes.append(
            (
                update(_products)
                .where(_products.c.id.in_(list(taken)), _products.c.stock >= units)
                .values(stock=_products.c.stock - units, updated_at=now),
                len(taken),
            )
        )
    if reserved:
        writes.append(
            (_pending(reserved).values(status="reserved", reserved_at=now, updated_at=now), len(reserved))
        )
    if failed:
        reasons = case(failed, value=_orders.c.id)
        writes.append(
            (
                _pending(list(failed)).values(status="failed", failure_reason=reasons, updated_at=now),
                len(failed),
            )
        )
    for statement, rows in writes:
        if rowcount(db.session.execute(statement)) != rows:
            db.session.rollback()
            return None
    db.session.commit()
    for order_id, reason in failed.items():
        log.info("order %s failed: %s", order_id, reason)
    return len(order_ids)


def _settle(
    order_ids: list[int], lines: Sequence[Row], products: dict[int, Row]
) -> tuple[list[int], dict[int, str], dict[int, int]]:
    """Decide from the locked stock, oldest order first, which orders take their items and
    which fail, and why. Returns (reserved ids, {failed id: reason}, {product id: units taken})."""
    left = {pid: row.stock for pid, row in products.items() if row.deleted_at is None}
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
        elif short.product_id in left:
            name = products[short.product_id].name
            failed[order_id] = _shortfall_message(
                short.product_id, short.quantity, name, left[short.product_id]
            )
        else:
            failed[order_id] = _shortfall_message(short.product_id, short.quantity, None, 0)
    return reserved, failed, dict(taken)


def _pending(order_ids: list[int]) -> Update:
    """An UPDATE of those orders that are still pending."""
    return update(_orders).where(_orders.c.id.in_(order_ids), _orders.c.status == "pending")


def reserve_locked(order: Order | None) -> str | None:
    """Reserve the stock of every item of a pending order already locked by this transaction,
    or none; commits or rolls back and returns the final status. Acts only on a `pending`
    order, so a second run (a retry, a duplicate job, a job after a cancel) changes nothing.
    The product-cache bump is the caller's (the drain bumps once per commit)."""
    if order is None or order.status != "pending":
        db.session.rollback()
        return order.status if order else None
    order_id = order.id
    for item in _by_product(order.items):
        if not _take(item):
            reason = _shortfall_reason(item)
            db.session.rollback()
            return fail(order_id, reason)
    if not _move(order_id, ("pending",), "reserved", reserved_at=utcnow()):
        db.session.rollback()  # cancelled meanwhile (SQLite has no row lock): undo the stock
        return None
    db.session.commit()
    return "reserved"


def fail(order_id: int, reason: str) -> str | None:
    """Mark a still-pending order failed (commits); returns its final status."""
    order = _lock(order_id)
    if order is None or not _move(order_id, ("pending",), "failed", failure_reason=reason):
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
    if not _move(order_id, (previous,), "cancelled", failure_reason=reason):
        db.session.rollback()
        raise Conflict("The order changed meanwhile and cannot be cancelled.", error="illegal_transition")
    if previous == "reserved":
        for item in _by_product(order.items):
            _give_back(item)
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
    if not _move(order_id, ("reserved",), "paid"):
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

"""Prices and stock for the features that sell products (orders): the only way another feature
reads or writes `products` rows.

Every function works inside the caller's transaction and never commits; after its commit the
caller bumps the catalogue cache (`service.invalidate_cache`). A product is live while
`deleted_at` is NULL: only live products are priced, locked and taken from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import NamedTuple, cast

from sqlalchemy import Connection, Table, bindparam, case, select, update

from project.database import rowcount, utcnow
from project.extensions import db
from project.products.models import Product

# Built once: composing a statement per request costs more CPU than running it.
# (A mapped class's __table__ is typed as a FromClause; this is a Table.)
_products = cast(Table, Product.__table__)
_LIVE = _products.c.deleted_at.is_(None)
_PRICES = select(_products.c.id, _products.c.price).where(
    _products.c.id.in_(bindparam("ids", expanding=True)), _LIVE
)
# NO KEY UPDATE, as an UPDATE takes: new order lines (a foreign key's KEY SHARE) still go in.
_LOCK = (
    select(_products.c.id, _products.c.name, _products.c.stock)
    .where(_products.c.id.in_(bindparam("ids", expanding=True)), _LIVE)
    .order_by(_products.c.id)
    .with_for_update(key_share=True)
)


class OnHand(NamedTuple):
    """A live product's name and units in stock, as `lock_live` read them."""

    name: str
    stock: int


def live_prices(product_ids: Iterable[int], connection: Connection | None = None) -> dict[int, Decimal]:
    """{product id: unit price} of those products that are live (unknown or deleted ones are
    left out), read on `connection` (a caller's Core transaction) or else the session."""
    rows = (connection or db.session).execute(_PRICES, {"ids": list(product_ids)})
    return {row.id: row.price for row in rows}


def lock_live(product_ids: Iterable[int]) -> dict[int, OnHand]:
    """The live ones of those products, their rows locked until the caller's transaction ends
    (taken in id order, as every stock move takes them: no deadlock between two takers)."""
    rows = db.session.execute(_LOCK, {"ids": sorted(product_ids)})
    return {row.id: OnHand(row.name, row.stock) for row in rows}


def take(units: Mapping[int, int]) -> bool:
    """Take `units` ({product id: units}) off the stock of live products locked by `lock_live`,
    in one UPDATE. False if any product no longer has them (or is gone): some rows may have
    changed, so the caller must roll back."""
    if not units:
        return True
    wanted = case(dict(units), value=_products.c.id)
    result = db.session.execute(
        update(_products)
        .where(_products.c.id.in_(list(units)), _products.c.stock >= wanted, _LIVE)
        .values(stock=_products.c.stock - wanted, updated_at=utcnow())
    )
    return rowcount(result) == len(units)


def give_back(units: Mapping[int, int]) -> None:
    """Put `units` ({product id: units}) back into stock, deleted products included (their
    count stays true), one product at a time in id order (the lock order of `lock_live`)."""
    now = utcnow()
    for product_id in sorted(units):
        db.session.execute(
            update(_products)
            .where(_products.c.id == product_id)
            .values(stock=_products.c.stock + units[product_id], updated_at=now)
        )

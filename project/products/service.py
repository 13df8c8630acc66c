"""Product catalogue: reads through the versioned cache, writes that invalidate it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError

from project.caching import cached_value, invalidate
from project.database import contains, rowcount, utcnow
from project.errors import Conflict, NotFound
from project.extensions import db
from project.pagination import COUNT_LIMIT, capped_count, capped_total, envelope
from project.products import search
from project.products.models import Product, ProductCount, folded
from project.products.schemas import MAX_STOCK

NAMESPACE = "products"
FIELDS = (
    "id",
    "sku",
    "name",
    "description",
    "price",
    "stock",
    "category",
    "external_id",
    "created_at",
    "updated_at",
)
SORT_COLUMNS = {
    "name": Product.name,
    "price": Product.price,
    "created_at": Product.created_at,
    "stock": Product.stock,
}


def as_dict(product: Product) -> dict[str, Any]:
    """Plain values (cacheable, picklable); the route's schema turns them into JSON."""
    return {name: getattr(product, name) for name in FIELDS}


def _ttl() -> int:
    return current_app.config["PRODUCTS_CACHE_TTL"]


def _live_products() -> Select:
    return select(Product).where(Product.deleted_at.is_(None))


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def _rows(ids: Sequence[int], order: list) -> list[dict[str, Any]]:
    products = db.session.scalars(select(Product).where(Product.id.in_(ids)).order_by(*order)).all()
    return [as_dict(p) for p in products]


def _page_ids(stmt: Select, order: list, page: int, per_page: int) -> Select:
    """The page's ids alone, from the narrowest plan the indexes allow (an index-only scan
    for the lists): a deep page skips index entries, not whole rows, before its rows are read."""
    return stmt.with_only_columns(Product.id).order_by(*order).limit(per_page).offset((page - 1) * per_page)


def _counted(stmt: Select, count_params: dict, count: Callable[[], int] | None = None) -> tuple[int, str]:
    """(total, total_relation) of the live products `stmt` selects: a count that stops after
    COUNT_LIMIT + 1 matches (or `count()`), cached under the namespace version (so paging one
    query counts it once; the cached figure is the capped count, so a cached answer has its
    relation)."""
    if count is None:
        counted = capped_count(stmt.with_only_columns(Product.id))
        count = lambda: db.session.scalar(counted)  # noqa: E731
    value = cached_value(NAMESPACE, "count", count_params, count, _ttl()).value
    return capped_total(int(value or 0))


def _page(stmt: Select, order: list, page: int, per_page: int, count_params: dict | None) -> dict:
    """One page of the live products `stmt` selects, in `order`, with its total: the
    trigger-kept live count for the unfiltered list, else a capped count (`_counted`)."""
    if count_params is None:
        live = db.session.scalar(select(ProductCount.live).where(ProductCount.id == 1)) or 0
        total, relation = capped_total(int(live))
    else:
        total, relation = _counted(stmt, count_params)
    items = _rows(_ids_of_page(stmt, order, page, per_page, total, relation), order)
    return envelope(items, page, per_page, total, relation)


def _ids_of_page(stmt: Select, order: list, page: int, per_page: int, total: int, relation: str) -> list[int]:
    """The page's ids; none without a query when the exact total ends before the page."""
    if relation == "eq" and (page - 1) * per_page >= total:
        return []
    return list(db.session.scalars(_page_ids(stmt, order, page, per_page)).all())


def _search_page(stmt: Select, page: int, per_page: int, term: str) -> dict:
    """One page of search matches, newest first, with a total counted up to COUNT_LIMIT.

    The count stops after COUNT_LIMIT + 1 matches, so a broad term costs a short trigram
    lookup (`search.matches`: the term's rare trigrams only) and about COUNT_LIMIT tested rows,
    not a test of every match; the page is an index scan in `created_at` order that stops after
    its own rows (a few hundred rows read for page 1 of a broad term). A deep page (ending past
    half the limit) asked before the count is cached reads the first COUNT_LIMIT + 1 matches in
    page order once: they are both the count and the page, where a separate count would read
    most of them again."""
    order: list = [Product.created_at.desc(), Product.id.desc()]
    offset = (page - 1) * per_page
    page_ids: list[int] | None = None

    def count_with_page() -> int:
        nonlocal page_ids
        first = db.session.scalars(stmt.with_only_columns(Product.id).order_by(*order).limit(COUNT_LIMIT + 1))
        matches = list(first.all())
        page_ids = matches[offset : offset + per_page]
        return len(matches)

    # Deep, and inside the first COUNT_LIMIT + 1 matches: a page that runs past them is read
    # by its own query (the slice would be short).
    deep = COUNT_LIMIT // 2 < offset + per_page <= COUNT_LIMIT + 1
    total, relation = _counted(stmt, {"search": term}, count_with_page if deep else None)
    if page_ids is None:  # the count came from the cache, or the page is not deep
        page_ids = _ids_of_page(stmt, order, page, per_page, total, relation)
    return envelope(_rows(page_ids, order), page, per_page, total, relation)


def list_products(
    page: int,
    per_page: int,
    sort_by: str = "created_at",
    sort_order: str = "desc",
    name: str | None = None,
    category: str | None = None,
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    in_stock: bool | None = None,
) -> dict:
    filters = {
        "name": name.lower() if name else None,
        "category": category.lower() if category else None,
        "min_price": min_price,
        "max_price": max_price,
        "in_stock": in_stock,
    }

    dialect = _dialect()
    stmt = _live_products()
    if name:
        stmt = stmt.where(contains(folded(Product.name, dialect), name))
    if category:
        stmt = stmt.where(folded(Product.category, dialect) == category.lower())
    if min_price is not None:
        stmt = stmt.where(Product.price >= min_price)
    if max_price is not None:
        stmt = stmt.where(Product.price <= max_price)
    if in_stock is not None:
        stmt = stmt.where(Product.stock > 0 if in_stock else Product.stock == 0)
    column = SORT_COLUMNS[sort_by]
    direction = (lambda c: c.asc()) if sort_order == "asc" else (lambda c: c.desc())
    filtered = any(value is not None for value in filters.values())
    order = [direction(column), direction(Product.id)]
    return _page(stmt, order, page, per_page, {"list": 1, **filters} if filtered else None)


def search_products(q: str, page: int, per_page: int) -> dict:
    term = q.strip().lower()
    return _search_page(_live_products().where(search.matches(term, _dialect())), page, per_page, term)


def _get_live(product_id: int) -> Product:
    product = db.session.get(Product, product_id)
    if product is None or product.deleted_at is not None:
        raise NotFound("Product not found.")
    return product


def get_product(product_id: int) -> dict[str, Any]:
    return as_dict(_get_live(product_id))


def _commit_product(product: Product) -> dict[str, Any]:
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("A product with this SKU already exists.", error="sku_taken") from exc
    invalidate_cache()
    return as_dict(product)


def _sku_taken(sku: str, other_than: int | None = None) -> bool:
    stmt = select(Product.id).where(Product.sku == sku)
    if other_than is not None:
        stmt = stmt.where(Product.id != other_than)
    return db.session.scalar(stmt) is not None


def create_product(data: dict[str, Any]) -> dict[str, Any]:
    if _sku_taken(data["sku"]):
        raise Conflict("A product with this SKU already exists.", error="sku_taken")
    product = Product(**data)
    db.session.add(product)
    return _commit_product(product)


def update_product(product_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """PUT passes every field (defaults filled in), PATCH only the given ones."""
    product = _get_live(product_id)
    if "sku" in changes and _sku_taken(changes["sku"], other_than=product.id):
        raise Conflict("A product with this SKU already exists.", error="sku_taken")
    for name, value in changes.items():
        setattr(product, name, value)
    product.updated_at = utcnow()
    return _commit_product(product)


def delete_product(product_id: int) -> None:
    product = _get_live(product_id)
    product.deleted_at = utcnow()
    db.session.commit()
    invalidate_cache()


def invalidate_cache() -> None:
    """After every committed write to products, here or elsewhere (sync, orders' stock moves)."""
    invalidate(NAMESPACE)


def adjust_stock(product_id: int, delta: int) -> dict[str, Any]:
    """One conditional UPDATE: concurrent deltas never lose an update nor go below zero."""
    new_stock = Product.stock + delta
    changed = rowcount(
        db.session.execute(
            update(Product)
            .where(
                Product.id == product_id, Product.deleted_at.is_(None), new_stock >= 0, new_stock <= MAX_STOCK
            )
            .values(stock=new_stock, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    )
    if not changed:
        db.session.rollback()
        product = _get_live(product_id)
        if product.stock + delta < 0:
            raise Conflict(
                f"Not enough stock: {product.stock} in stock, delta {delta}.", error="insufficient_stock"
            )
        raise Conflict(f"Stock would exceed {MAX_STOCK}.", error="insufficient_stock")
    db.session.commit()
    invalidate_cache()
    return as_dict(_get_live(product_id))

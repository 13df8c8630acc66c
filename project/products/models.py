from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, Numeric, String, Text, func, text
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from project.database import UTCDateTime, utcnow
from project.extensions import Model

# Lists only ever read live rows, so every list index is partial: deleted rows cost nothing.
LIVE = text("deleted_at IS NULL")
# chr(31) separates the searched fields in the one search document, so a match never
# spans two fields; `q` may not contain it.
SEARCH_SEPARATOR = "\x1f"


# Must stay equal to search_document() below, as PostgreSQL prints it back.
SEARCH_DOCUMENT_SQL = (
    "lower((((name::text || chr(31)) || COALESCE(description, ''::text)) || chr(31))"
    " || COALESCE(category, ''::character varying)::text)"
)


def _live_index(name: str, *columns, **kwargs) -> Index:
    return Index(name, *columns, postgresql_where=LIVE, sqlite_where=LIVE, **kwargs)


def _trigram_index(name: str, expression) -> Index:
    index = Index(
        name,
        expression,
        postgresql_using="gin",
        postgresql_ops={"": "gin_trgm_ops"},
        postgresql_where=LIVE,
    )
    return index.ddl_if(dialect="postgresql")


class Product(Model):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    stock: Mapped[int] = mapped_column(Integer, default=0)
    category: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        # One (sort key, id) index per sort: page 1 of any sort is an index range scan.
        _live_index("ix_products_live_created_at", "created_at", "id"),
        _live_index("ix_products_live_price", "price", "id"),
        _live_index("ix_products_live_name", "name", "id"),
        _live_index("ix_products_live_stock", "stock", "id"),
        # Category + price range, sorted by price: the page is an index range scan, and the
        # INCLUDEd columns make the count an index-only scan (`in_stock` checked in the index).
        _live_index(
            "ix_products_live_category",
            func.lower(text("category")),
            "price",
            "id",
            postgresql_include=["stock", "category"],
        ),
        # PostgreSQL only (pg_trgm): `name` contains and `search` use these.
        _trigram_index("ix_products_name_trgm", func.lower(text("name"))),
        _trigram_index("ix_products_search_trgm", text(SEARCH_DOCUMENT_SQL)),
    )


def folded(expression: ColumnElement[Any] | InstrumentedAttribute[Any], dialect: str) -> ColumnElement[str]:
    """`expression` lower-cased in the database: PostgreSQL's lower() folds every letter;
    SQLite's folds ASCII only, so there `unicode_lower` (project.database) does it."""
    return func.lower(expression) if dialect == "postgresql" else func.unicode_lower(expression)


def search_document(dialect: str = "postgresql") -> ColumnElement[str]:
    """The lower-cased text `search` matches; on PostgreSQL the trigram index is built on
    exactly this expression (SEARCH_DOCUMENT_SQL)."""
    sep = func.chr(31) if dialect == "postgresql" else func.char(31)
    return folded(
        Product.name
        + sep
        + func.coalesce(Product.description, "")
        + sep
        + func.coalesce(Product.category, ""),
        dialect,
    )


class ProductCount(Model):
    """The exact number of live products, kept by database triggers (migration
    0003_catalogue), so the unfiltered list's `total` never counts a million rows."""

    __tablename__ = "product_counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    live: Mapped[int] = mapped_column(BigInteger, default=0)


SYNC_STATUSES = ("running", "succeeded", "failed")


class SyncRun(Model):
    """One run of the upstream catalogue sync (`/products/sync/status`)."""

    __tablename__ = "sync_runs"
    # The sync lock: at most one running run, enforced by the database for every process.
    __table_args__ = (
        Index(
            "uq_sync_runs_running",
            "status",
            unique=True,
            postgresql_where=text("status = 'running'"),
            sqlite_where=text("status = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)

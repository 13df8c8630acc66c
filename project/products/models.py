from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from project.database import UTCDateTime, utcnow
from project.extensions import Model

# Lists only ever read live rows, so every list index is partial: deleted rows cost nothing.
LIVE = text("deleted_at IS NULL")
# chr(31) separates the searched fields in the one search document, so a match never
# spans two fields; `q` may not contain it.
SEARCH_SEPARATOR = "\x1f"


# The text `search` matches: name, description and category, lower-cased, chr(31) between
# them. Written as each database prints it back, so the migration check compares equal
# (migration 0007 has frozen copies). SQLite's lower() folds ASCII only: `unicode_lower`
# (project.database) folds the rest, as PostgreSQL's does.
SEARCH_TEXT_SQL = {
    "postgresql": "lower((((name::text || chr(31)) || COALESCE(description, ''::text)) || chr(31))"
    " || COALESCE(category, ''::character varying)::text)",
    "sqlite": "unicode_lower(name || char(31) || coalesce(description, '') || char(31)"
    " || coalesce(category, ''))",
}


class SearchTextExpression(FunctionElement[str]):
    """The generated `search_text` column's expression, in the dialect's own words."""

    type = Text()
    inherit_cache = True


@compiles(SearchTextExpression)
def _search_text_sql(element: SearchTextExpression, compiler: SQLCompiler, **kw: Any) -> str:
    return SEARCH_TEXT_SQL[compiler.dialect.name]


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
    # What `search` matches, kept by the database (a generated column; the app never writes
    # it, nor reads it back). PostgreSQL stores it, so a scan in page order tests a plain
    # column per row instead of building the lower-cased text again. On SQLite migration 0007
    # adds it VIRTUAL, computed when read (SQLite cannot add a stored column in place);
    # `persisted` here only shapes a create_all().
    search_text: Mapped[str | None] = mapped_column(
        Text, Computed(SearchTextExpression(), persisted=True), deferred=True
    )

    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        # One (sort key, id) index per sort: page 1 of any sort is an index range scan.
        # `search_text` INCLUDEd: a search in page order (newest first) is an index-only scan,
        # its test on each row never visits the row.
        _live_index("ix_products_live_created_at", "created_at", "id", postgresql_include=["search_text"]),
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
        _trigram_index("ix_products_search_trgm", text("search_text")),
    )


def folded(expression: ColumnElement[Any] | InstrumentedAttribute[Any], dialect: str) -> ColumnElement[str]:
    """`expression` lower-cased in the database: PostgreSQL's lower() folds every letter;
    SQLite's folds ASCII only, so there `unicode_lower` (project.database) does it."""
    return func.lower(expression) if dialect == "postgresql" else func.unicode_lower(expression)


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

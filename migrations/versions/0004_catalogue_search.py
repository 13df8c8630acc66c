"""catalogue at scale: planner statistics for the search expressions, covering category index

Revision ID: 0004_catalogue_search
Revises: 0003_catalogue
Create Date: 2026-11-29 19:10:00

PostgreSQL keeps no statistics for the expressions of partial indexes, so without these
`CREATE STATISTICS` objects it guessed a fixed 100 rows for any `search` or `name` term:
a term matching 5% of a million rows was read in full and sorted even for page 1, where an
index scan in sort order stops after a few hundred rows. With expression statistics the
planner sees how common a term is and picks the right plan for broad and selective terms.

`ix_products_live_category` gains `id` (the sort's tiebreak, so the page needs no sort)
and, on PostgreSQL, INCLUDEs `stock` and `category`, so the exact count of a category +
price range + `in_stock` filter is an index-only scan instead of a visit to every row.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_catalogue_search"
down_revision = "0003_catalogue"
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")
# Must stay textually equal to project.products.models.SEARCH_DOCUMENT_SQL.
SEARCH_DOCUMENT = (
    "lower((((name::text || chr(31)) || COALESCE(description, ''::text)) || chr(31))"
    " || COALESCE(category, ''::character varying)::text)"
)
STATISTICS = {
    "products_search_document_stats": SEARCH_DOCUMENT,
    "products_lower_name_stats": "lower(name::text)",
    "products_lower_category_stats": "lower(category::text)",
}


def _category_index(columns: list, include: list[str] | None) -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index("ix_products_live_category")
        batch_op.create_index(
            "ix_products_live_category",
            columns,
            unique=False,
            postgresql_where=LIVE,
            sqlite_where=LIVE,
            **({"postgresql_include": include} if include else {}),
        )


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    _category_index([sa.text("lower(category)"), "price", "id"], ["stock", "category"] if postgres else None)
    if postgres:
        for name, expression in STATISTICS.items():
            op.execute(f"CREATE STATISTICS IF NOT EXISTS {name} ON ({expression}) FROM products")
        op.execute("ANALYZE products")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {name}")
    _category_index([sa.text("lower(category)"), "price"], None)

"""products.search_text: the text `search` matches, a generated column

Revision ID: 0007_search_text
Revises: 0006_links_and_mail_limits

A broad search read in page order (newest first) tests its term on every row it passes:
page 500 of a term in 5% of a million rows passes ~200,000 rows. Built per row
(lower() of name, description and category joined), that test was most of the request;
on a stored column it is a plain LIKE.

PostgreSQL: the column is STORED (adding it rewrites the table, under an exclusive lock:
about a minute at a million rows). The trigram index moves from the expression to the
column. `ix_products_live_created_at` INCLUDEs the column, so the search's ordered scan is
index-only. The expression statistics of 0004 give way to the column's own, sampled wider
(1000): with the default 100, a term in 5% of rows could be taken for 1% and read in full
and sorted instead of scanned in page order.

SQLite cannot add a STORED column to a table in place: there the column is VIRTUAL
(computed when read, as the search's expression was). Its expression calls `unicode_lower`,
which every app connection registers (project/sqlite.py); a bare `sqlite3` shell has no such
function, so there `SELECT *` and INSERTs on products fail (name the columns to read).
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_search_text"
down_revision = "0006_links_and_mail_limits"
branch_labels = None
depends_on = None

LIVE = "WHERE deleted_at IS NULL"
# Frozen copies of project.products.models.SEARCH_TEXT_SQL at this revision.
SEARCH_TEXT = {
    "postgresql": "lower((((name::text || chr(31)) || COALESCE(description, ''::text)) || chr(31))"
    " || COALESCE(category, ''::character varying)::text)",
    "sqlite": "unicode_lower(name || char(31) || coalesce(description, '') || char(31)"
    " || coalesce(category, ''))",
}
SEARCH_STATISTICS = "products_search_document_stats"  # 0004's, on the expression


def upgrade():
    dialect = op.get_bind().dialect.name
    stored = dialect == "postgresql"
    computed = sa.Computed(sa.text(SEARCH_TEXT[dialect]), persisted=True if stored else None)
    op.add_column("products", sa.Column("search_text", sa.Text(), computed))
    if not stored:
        return
    op.execute("ALTER TABLE products ALTER COLUMN search_text SET STATISTICS 1000")
    op.execute(f"DROP STATISTICS IF EXISTS {SEARCH_STATISTICS}")
    op.execute("DROP INDEX IF EXISTS ix_products_search_trgm")
    op.execute(f"CREATE INDEX ix_products_search_trgm ON products USING gin (search_text gin_trgm_ops) {LIVE}")
    op.execute("DROP INDEX IF EXISTS ix_products_live_created_at")
    op.execute(
        f"CREATE INDEX ix_products_live_created_at ON products (created_at, id) INCLUDE (search_text) {LIVE}"
    )
    op.execute("ANALYZE products")


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        document = SEARCH_TEXT["postgresql"]
        op.execute("DROP INDEX IF EXISTS ix_products_live_created_at")
        op.execute(f"CREATE INDEX ix_products_live_created_at ON products (created_at, id) {LIVE}")
        op.execute("DROP INDEX IF EXISTS ix_products_search_trgm")
        op.execute(f"CREATE INDEX ix_products_search_trgm ON products USING gin (({document}) gin_trgm_ops) {LIVE}")
        op.execute(f"CREATE STATISTICS IF NOT EXISTS {SEARCH_STATISTICS} ON ({document}) FROM products")
    op.drop_column("products", "search_text")
    if dialect == "postgresql":
        op.execute("ANALYZE products")

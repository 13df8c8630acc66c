"""catalogue: list indexes, search indexes, exact live count

Revision ID: 0003_catalogue
Revises: 0001_initial
Create Date: 2026-11-21 23:31:30

Every list index is partial (`deleted_at IS NULL`) and ends with `id`, the tiebreak of every
sort. On PostgreSQL, pg_trgm GIN indexes serve `name` contains and `search`. Triggers keep
`product_counts.live` equal to the number of live products (PostgreSQL: one statement-level
trigger per statement, so a bulk upsert updates the count once).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_catalogue"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")
LIST_INDEXES = {
    "ix_products_live_created_at": ["created_at", "id"],
    "ix_products_live_price": ["price", "id"],
    "ix_products_live_name": ["name", "id"],
    "ix_products_live_stock": ["stock", "id"],
    "ix_products_live_category": [sa.text("lower(category)"), "price"],
}
OLD_INDEXES = {
    "ix_products_category": ["category"],
    "ix_products_created_at": ["created_at"],
    "ix_products_deleted_at": ["deleted_at"],
    "ix_products_name": ["name"],
    "ix_products_price": ["price"],
    "ix_products_stock": ["stock"],
}
# Must stay textually equal to project.products.models.search_document().
SEARCH_DOCUMENT = (
    "lower((((name::text || chr(31)) || COALESCE(description, ''::text)) || chr(31))"
    " || COALESCE(category, ''::character varying)::text)"
)

PG_COUNT_FUNCTION = """
CREATE OR REPLACE FUNCTION products_count_live() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta bigint := 0;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT delta + count(*) INTO delta FROM new_rows WHERE deleted_at IS NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        SELECT delta - count(*) INTO delta FROM old_rows WHERE deleted_at IS NULL;
    END IF;
    -- Stock and price updates change nothing here, so they never lock the count row.
    IF delta <> 0 THEN
        INSERT INTO product_counts (id, live) VALUES (1, delta)
        ON CONFLICT (id) DO UPDATE SET live = product_counts.live + EXCLUDED.live;
    END IF;
    RETURN NULL;
END $$
"""
PG_TRIGGERS = {
    "products_count_insert": "AFTER INSERT ON products REFERENCING NEW TABLE AS new_rows",
    "products_count_update": (
        "AFTER UPDATE ON products REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
    "products_count_delete": "AFTER DELETE ON products REFERENCING OLD TABLE AS old_rows",
}
SQLITE_TRIGGERS = {
    "products_count_insert": """
        AFTER INSERT ON products WHEN NEW.deleted_at IS NULL BEGIN
            INSERT INTO product_counts (id, live) VALUES (1, 1)
            ON CONFLICT (id) DO UPDATE SET live = live + 1;
        END""",
    "products_count_update": """
        AFTER UPDATE OF deleted_at ON products
        WHEN (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL) BEGIN
            INSERT INTO product_counts (id, live)
            VALUES (1, CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE -1 END)
            ON CONFLICT (id) DO UPDATE SET live = live + excluded.live;
        END""",
    "products_count_delete": """
        AFTER DELETE ON products WHEN OLD.deleted_at IS NULL BEGIN
            UPDATE product_counts SET live = live - 1 WHERE id = 1;
        END""",
}


def upgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "product_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("live", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_counts")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        for name in OLD_INDEXES:
            batch_op.drop_index(name)
        for name, columns in LIST_INDEXES.items():
            batch_op.create_index(name, columns, unique=False, postgresql_where=LIVE, sqlite_where=LIVE)

    # The sync lock: at most one running sync run.
    running = sa.text("status = 'running'")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index(
            "uq_sync_runs_running", ["status"], unique=True, postgresql_where=running, sqlite_where=running
        )

    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_products_name_trgm ON products USING gin (lower((name)::text) gin_trgm_ops)"
            " WHERE deleted_at IS NULL"
        )
        op.execute(
            f"CREATE INDEX ix_products_search_trgm ON products USING gin (({SEARCH_DOCUMENT}) gin_trgm_ops)"
            " WHERE deleted_at IS NULL"
        )
        op.execute(PG_COUNT_FUNCTION)
        for name, when in PG_TRIGGERS.items():
            op.execute(
                f"CREATE TRIGGER {name} {when} FOR EACH STATEMENT EXECUTE FUNCTION products_count_live()"
            )
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute(
        "INSERT INTO product_counts (id, live) SELECT 1, count(*) FROM products WHERE deleted_at IS NULL"
    )


def downgrade():
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in PG_TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON products" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS products_count_live()")
        op.execute("DROP INDEX IF EXISTS ix_products_search_trgm")
        op.execute("DROP INDEX IF EXISTS ix_products_name_trgm")
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_index("uq_sync_runs_running")
    with op.batch_alter_table("products", schema=None) as batch_op:
        for name in LIST_INDEXES:
            batch_op.drop_index(name)
        for name, columns in OLD_INDEXES.items():
            batch_op.create_index(name, columns, unique=False)
    op.drop_table("product_counts")

"""emailed links remember their address; mail sends are counted (MAIL_RATE_LIMIT)

user_tokens.email: the address a link was mailed to. A link verifies (or resets) only while
the account still has that address, so a link sent before an email change never proves the
new one. Links issued before this revision have none and stop working (they are at most
VERIFY_TOKEN_EXPIRE_HOURS old; the user asks for a new one).

mail_sends: one row per mail queued, keyed by target address and by causing account, so
MAIL_RATE_LIMIT can count them in every process, with or without Redis.

Revision ID: 0006_links_and_mail_limits
Revises: 0005_identity_normal_form
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_links_and_mail_limits"
down_revision = "0005_identity_normal_form"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user_tokens") as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=255), nullable=True))
    op.create_table(
        "mail_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_sends")),
    )
    op.create_index("ix_mail_sends_key_sent_at", "mail_sends", ["key", "sent_at"])


def downgrade():
    op.drop_index("ix_mail_sends_key_sent_at", table_name="mail_sends")
    op.drop_table("mail_sends")
    with op.batch_alter_table("user_tokens") as batch_op:
        batch_op.drop_column("email")

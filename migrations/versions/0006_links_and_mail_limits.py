"""emailed links remember their address; mail sends are counted; emails keyed by skeleton

users.email_key becomes the email's confusable skeleton (TR39 data: `alıce@`, `аlice@` are
`alice@`). Where two existing rows would share one, nothing changes and the migration stops,
naming the rows, as 0005 does: an operator decides which account keeps the address.

user_tokens.email: the address a link was mailed to. A link verifies (or resets) only while
the account still has that address, so a link sent before an email change never proves the
new one. Links issued before this revision have none and stop working (they are at most
VERIFY_TOKEN_EXPIRE_HOURS old; the user asks for a new one).

mail_sends: one row per mail queued, keyed by target address and by causing account, so
MAIL_RATE_LIMIT can count them in every process, with or without Redis.

Revision ID: 0006_links_and_mail_limits
Revises: 0005_identity_normal_form
"""

import json
import unicodedata
from importlib import resources

import sqlalchemy as sa
from alembic import op

revision = "0006_links_and_mail_limits"
down_revision = "0005_identity_normal_form"
branch_labels = None
depends_on = None


# Frozen copies of the app's rules at this revision (project/users/models.py).
def normal_form(value):
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).strip().casefold())


def skeleton_of(confusables):
    def prototype(char):
        if char.isascii():
            return char
        glyphs = {g["c"].strip("\u200e").casefold() for g in confusables.get(char, ())}
        candidates = sorted(g for g in glyphs if len(g) == 1 and g.isascii() and g.isalnum())
        letters = [g for g in candidates if g.isalpha()]
        return (letters or candidates or [char])[0]

    def skeleton(value):
        return unicodedata.normalize("NFC", "".join(map(prototype, unicodedata.normalize("NFD", value))))

    return skeleton


def rekey_emails(conn):
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("email", sa.String), sa.column("email_key", sa.String))
    data = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    skeleton = skeleton_of(json.loads(data))
    rows = list(conn.execute(sa.select(users.c.id, users.c.email, users.c.email_key).order_by(users.c.id)))
    seen, problems, changes = {}, [], []
    for user_id, email, old_key in rows:
        key = skeleton(normal_form(email))
        if key in seen:
            problems.append(f"users {seen[key]} and {user_id} share the email skeleton {key!r}")
        seen[key] = user_id
        if key != old_key:
            changes.append((user_id, key))
    if problems:
        raise RuntimeError(
            "Cannot key emails by their confusable skeleton; resolve these rows (change or delete "
            "one of each pair), then run the migration again:\n  " + "\n  ".join(problems)
        )
    for user_id, key in changes:
        conn.execute(users.update().where(users.c.id == user_id).values(email_key=key))


def upgrade():
    rekey_emails(op.get_bind())  # first: a refused run changes nothing
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
    conn = op.get_bind()
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("email", sa.String), sa.column("email_key", sa.String))
    for user_id, email in list(conn.execute(sa.select(users.c.id, users.c.email))):
        conn.execute(users.update().where(users.c.id == user_id).values(email_key=normal_form(email)))
    op.drop_index("ix_mail_sends_key_sent_at", table_name="mail_sends")
    op.drop_table("mail_sends")
    with op.batch_alter_table("user_tokens") as batch_op:
        batch_op.drop_column("email")

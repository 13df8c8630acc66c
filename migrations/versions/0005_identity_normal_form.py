"""emails and usernames unique in their normal form (NFKC, case-folded, stripped)

Adds users.email_key and users.username_key, fills them from the existing rows (and brings
email and username to their stored forms), then makes them unique. Where two existing rows
share a normal form, nothing changes and the migration stops, naming the rows: an operator
decides which account keeps the name.

Revision ID: 0005_identity_normal_form
Revises: 0004_catalogue_search
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0005_identity_normal_form"
down_revision = "0004_catalogue_search"
branch_labels = None
depends_on = None


# Frozen copies of the app's rules at this revision (project/users/models.py normal_form,
# project/users/service.py normalize_email): a migration must not change when the app does.
def normal_form(value):
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).strip().casefold())


def stored_email(value):
    return unicodedata.normalize("NFKC", value).strip().lower()


def stored_username(value):
    return unicodedata.normalize("NFKC", value).strip()


def collisions(rows, field):
    seen, found = {}, []
    for row in rows:
        key = normal_form(row[field])
        if key in seen:
            found.append(f"users {seen[key]} and {row['id']} share the {field} normal form {key!r}")
        else:
            seen[key] = row["id"]
    return found


def upgrade():
    conn = op.get_bind()
    users = sa.table(
        "users",
        sa.column("id", sa.Integer),
        sa.column("email", sa.String),
        sa.column("username", sa.String),
        sa.column("email_key", sa.String),
        sa.column("username_key", sa.String),
    )
    # Checked before any change, so a refused run leaves the schema as it was.
    query = sa.select(users.c.id, users.c.email, users.c.username).order_by(users.c.id)
    rows = [dict(row) for row in conn.execute(query).mappings()]
    problems = collisions(rows, "email") + collisions(rows, "username")
    problems += [
        f"user {row['id']}: the {field} is longer than 255 characters in its normal form"
        for row in rows
        for field in ("email", "username")
        if len(normal_form(row[field])) > 255
    ]
    if problems:
        raise RuntimeError(
            "Cannot make emails and usernames unique in their normal form; resolve these rows "
            "(rename or delete one of each pair), then run the migration again:\n  "
            + "\n  ".join(problems)
        )

    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("email_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("username_key", sa.String(length=255), nullable=True))
    for row in rows:
        conn.execute(
            users.update()
            .where(users.c.id == row["id"])
            .values(
                email=stored_email(row["email"]),
                username=stored_username(row["username"]),
                email_key=normal_form(row["email"]),
                username_key=normal_form(row["username"]),
            )
        )
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("email_key", existing_type=sa.String(length=255), nullable=False)
        batch_op.alter_column("username_key", existing_type=sa.String(length=255), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_users_email_key"), ["email_key"])
        batch_op.create_unique_constraint(batch_op.f("uq_users_username_key"), ["username_key"])


def downgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_users_username_key"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_users_email_key"), type_="unique")
        batch_op.drop_column("username_key")
        batch_op.drop_column("email_key")

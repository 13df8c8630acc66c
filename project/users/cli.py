"""`flask users create-admin` and `flask users cleanup-unverified`."""

from __future__ import annotations

import re

import click
from flask.cli import AppGroup
from marshmallow import Schema

from project.cli import one_line_errors
from project.guard import Role
from project.users.jobs import cleanup_unverified_users
from project.users.schemas import email_field, username_field
from project.users.service import create_user, find_by_login, normalize_email

users = AppGroup("users", help="User accounts.")


class AdminArgs(Schema):
    email = email_field(required=True)
    username = username_field(required=True)


def _default_username(email: str) -> str:
    local = re.sub(r"[^A-Za-z0-9_.-]", "", email.split("@", 1)[0])[:50]
    return local if len(local) >= 3 else f"admin-{local}"


@users.command("create-admin")
@click.option("--email", required=True, help="The admin's email (login name).")
@click.option(
    "--password",
    default=None,
    help="Checked against the password policy. Better left out: then it is asked for, hidden, "
    "twice, and stays out of the shell history and the process list.",
)
@click.option("--username", default=None, help="Defaults to the email's local part.")
def create_admin(email: str, password: str | None, username: str | None) -> None:
    """Create an admin account (verified, active). Safe to run again: an existing admin with
    that email is reported and left as it is."""
    with one_line_errors():
        args = AdminArgs().load({"email": email, "username": username or _default_username(email)})
    existing = find_by_login(normalize_email(args["email"]))
    if existing is not None and existing.role == Role.ADMIN:
        click.echo(f"Admin {existing.email} already exists (id {existing.id}); nothing to do.")
        return
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with one_line_errors():
        user = create_user(args["email"], args["username"], password, role=Role.ADMIN, verified=True)
    click.echo(f"Created admin {user.email} (id {user.id}, username {user.username}).")


@users.command("cleanup-unverified")
def cleanup_unverified_command() -> None:
    """Delete accounts still unverified after UNVERIFIED_USER_TTL_HOURS, now."""
    count = cleanup_unverified_users()
    click.echo(f"Deleted {count} unverified account(s).")


commands = [users]

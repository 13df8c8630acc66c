"""`flask products sync` (one sync now, in the foreground) and `flask seed` (demo data)."""

from __future__ import annotations

import secrets
import uuid
from decimal import Decimal

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select

from project.caching import bump
from project.cli import Progress, one_line_errors
from project.extensions import db
from project.products.models import Product
from project.products.service import NAMESPACE
from project.products.sync import run_sync

products_cli = AppGroup("products", help="The product catalogue.")


@products_cli.command("sync")
def sync_command() -> None:
    """Pull the upstream catalogue now, with progress (a bar on a terminal, else log lines)."""
    labels = {"fetch": "Fetching upstream", "save": "Saving products"}
    with Progress(labels) as progress:
        run = run_sync(f"cli-{uuid.uuid4()}", progress)
    if run is None:
        raise click.ClickException("Another sync is running.")
    summary = f"{run.created} created, {run.updated} updated, {run.failed} failed"
    if run.status != "succeeded":
        raise click.ClickException(f"Sync failed: {run.error}")
    click.echo(f"Sync succeeded: {summary}.")
    if run.error:
        click.echo(run.error)


DEMO_USERS = (
    ("admin@example.com", "admin", "admin"),
    ("alice@example.com", "alice", "user"),
    ("bob@example.com", "bob", "user"),
    ("carol@example.com", "carol", "user"),
)
DEMO_CATEGORIES = ("laptops", "phones", "audio", "books", "kitchen")


def demo_products() -> list[dict]:
    return [
        {
            "sku": f"DEMO-{n:03d}",
            "name": f"Demo {DEMO_CATEGORIES[n % len(DEMO_CATEGORIES)].rstrip('s')} {n}",
            "description": f"A demo product in {DEMO_CATEGORIES[n % len(DEMO_CATEGORIES)]}.",
            "price": Decimal(9 + n * 7) + Decimal("0.99"),
            "stock": (n * 13) % 50,
            "category": DEMO_CATEGORIES[n % len(DEMO_CATEGORIES)],
        }
        for n in range(1, 21)
    ]


DEMO_PASSWORD = "Demo!Passw0rd"


@click.command("seed")
@with_appcontext
@click.option(
    "--password",
    envvar="SEED_PASSWORD",
    default=None,
    help=f"Password of the demo accounts (default {DEMO_PASSWORD!r}; random in production).",
)
@click.option("--yes", is_flag=True, help="Required with APP_ENV=production: yes, demo data here.")
@click.option(
    "--admin/--no-admin",
    default=None,
    help="Create the demo admin (default: yes in development, no in production).",
)
def seed_command(password: str | None, yes: bool, admin: bool | None) -> None:
    """Create demo data (a few users, products; an admin in development); adds nothing twice."""
    from project.security import check_password_policy
    from project.users.models import User
    from project.users.service import create_user

    production = current_app.config["APP_ENV"] == "production"
    if production and not yes:
        raise click.ClickException("APP_ENV is production: demo data goes in only with --yes.")
    if admin is None:
        admin = not production  # an admin account in production only when asked for
    if password is None:
        # A well-known password must never reach a production database.
        password = f"{secrets.token_urlsafe(12)}-Aa1!" if production else DEMO_PASSWORD
    with one_line_errors():
        check_password_policy(password)
    taken = set(db.session.scalars(select(User.email)))
    wanted = [user for user in DEMO_USERS if admin or user[2] != "admin"]
    users = [(email, name, role) for email, name, role in wanted if email not in taken]
    for email, username, role in users:
        if db.session.scalar(select(User.id).where(User.username == username)) is not None:
            username = f"{username}-{uuid.uuid4().hex[:6]}"
        with one_line_errors():
            create_user(email, username, password, role=role, verified=True)
    skus = set(db.session.scalars(select(Product.sku).where(Product.sku.like("DEMO-%"))))
    products = [Product(**data) for data in demo_products() if data["sku"] not in skus]
    db.session.add_all(products)
    db.session.commit()
    if products:
        bump(NAMESPACE)
    click.echo(f"Seeded {len(users)} users and {len(products)} products.")
    if users:
        click.echo(f"Demo accounts ({', '.join(email for email, _, _ in users)}) use password {password!r}.")


commands = [products_cli, seed_command]

"""`flask products sync`: one sync now, in the foreground, with progress."""

from __future__ import annotations

import uuid

import click
from flask.cli import AppGroup

from project.cli import Progress
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


commands = [products_cli]

"""`flask products sync`: one sync now, in the foreground, with progress."""

from __future__ import annotations

import uuid

import click
from flask.cli import AppGroup

from project.products.sync import run_sync

products_cli = AppGroup("products", help="The product catalogue.")


@products_cli.command("sync")
def sync_command() -> None:
    """Pull the upstream catalogue now, with progress."""
    bars: dict[str, click._termui_impl.ProgressBar] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            label = "Fetching upstream" if stage == "fetch" else "Saving products "
            bars[stage] = click.progressbar(length=total, label=label, show_pos=True)
            bars[stage].__enter__()
        bar = bars[stage]
        bar.length = max(total, 1)
        bar.update(done - bar.pos)

    run = run_sync(f"cli-{uuid.uuid4()}", progress)
    for bar in bars.values():
        bar.__exit__(None, None, None)
    if run is None:
        raise click.ClickException("Another sync is running.")
    summary = f"{run.created} created, {run.updated} updated, {run.failed} failed"
    if run.status != "succeeded":
        raise click.ClickException(f"Sync failed: {run.error}")
    click.echo(f"Sync succeeded: {summary}.")
    if run.error:
        click.echo(run.error)


commands = [products_cli]

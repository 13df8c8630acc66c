"""Shared by the feature CLIs (`project/<feature>/cli.py`): errors as one clear line, and
progress that reads well on a terminal and as log lines elsewhere."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import click
from flask import current_app
from marshmallow import ValidationError

from project.errors import AppError

log = logging.getLogger("cli")


def describe(messages: dict | list | str) -> str:
    """Marshmallow's messages as one line: `{"email": ["Not a valid email address."]}` ->
    `email: Not a valid email address.`"""
    if isinstance(messages, dict):
        return "; ".join(f"{field}: {describe(inner)}" for field, inner in messages.items())
    if isinstance(messages, list):
        return " ".join(describe(inner) for inner in messages)
    return str(messages)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """A validation or domain error ends the command with `Error: <one line>` and exit code 1."""
    try:
        yield
    except ValidationError as exc:
        raise click.ClickException(describe(exc.messages)) from None
    except AppError as exc:
        raise click.ClickException(exc.message) from None


class Progress:
    """`progress(stage, done, total)` for a long command.

    On a terminal: one bar per stage on stderr; a log line written meanwhile first clears the
    bar's line, so it never lands on it. Elsewhere (a pipe, `docker logs`, cron): log lines in
    the app's format, at each stage and every tenth of the way.
    """

    def __init__(self, labels: dict[str, str], stream: TextIO | None = None) -> None:
        self.labels = labels
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.bar: click._termui_impl.ProgressBar | None = None
        self.stage: str | None = None
        self.logged: dict[str, int] = {}
        self._clear = _ClearLine(self.stream)

    def __enter__(self) -> Progress:
        if self.tty:
            current_app.extensions["log_handler"].addFilter(self._clear)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
        current_app.extensions["log_handler"].removeFilter(self._clear)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.tty:
            self._draw(stage, done, total)
        else:
            self._log(stage, done, total)

    def _draw(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage or self.bar is None:
            if self.bar is not None:
                self.bar.__exit__(None, None, None)
            width = max(map(len, self.labels.values()))
            label = self.labels.get(stage, stage).ljust(width)
            self.bar = click.progressbar(length=max(total, 1), label=label, show_pos=True, file=self.stream)
            self.bar.__enter__()
            self.stage = stage
        self.bar.length = max(total, 1)
        self.bar.update(done - self.bar.pos)

    def _log(self, stage: str, done: int, total: int) -> None:
        tenth = 10 * done // max(total, 1)
        if self.logged.get(stage, -1) < tenth:
            self.logged[stage] = tenth
            log.info("%s: %d/%d", self.labels.get(stage, stage), done, total)


class _ClearLine(logging.Filter):
    """Clears the terminal line (the bar) before a log record is written to it."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream

    def filter(self, record: logging.LogRecord) -> bool:
        self.stream.write("\r\x1b[K")
        return True

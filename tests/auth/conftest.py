"""Accounts fixtures: a real SMTP server on loopback."""

from __future__ import annotations

import email
import threading
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller

from tests.helpers import free_port, link_tokens


class Mailbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list:
        return [m for m in self.messages if m["To"] == address]

    def token_for(self, address: str, subject_word: str) -> str:
        """The token of the latest mail to `address` whose subject holds `subject_word`."""
        mails = [m for m in self.to(address) if subject_word.lower() in m["Subject"].lower()]
        assert mails, f"no {subject_word!r} mail to {address}: {[m['Subject'] for m in self.messages]}"
        text = mails[-1].get_body(preferencelist=("plain",)).get_content()
        tokens = link_tokens(text)
        assert tokens, text
        return tokens[0]


@pytest.fixture
def smtp_server(app):
    """A real SMTP server on a free loopback port; the app sends its mail there."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_USE_TLS=False)
    yield mailbox
    controller.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()

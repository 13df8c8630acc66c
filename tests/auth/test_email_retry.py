"""An email whose first SMTP attempt fails arrives on the retry: real worker and scheduler
processes, a real SMTP server that refuses the first message."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller

from tests.auth.conftest import Mailbox, free_port
from tests.helpers import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


class RefusesOnce(Mailbox):
    """Answers the first message with a temporary failure (451), then accepts."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        if self.refused == 0:
            self.refused += 1
            return "451 4.3.0 Try again later"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def flaky_smtp():
    mailbox = RefusesOnce()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield mailbox, controller.port
    controller.stop()


@pytest.mark.app_config(EMAIL_RETRY_BACKOFF=[2, 60])
def test_a_verification_email_refused_once_arrives_on_the_retry(client, flaky_smtp, app_process):
    mailbox, port = flaky_smtp
    body = {"email": "retry@example.com", "username": "retry", "password": "Str0ng!Passw0rd"}
    assert client.post("/api/v1/auth/register", json=body).status_code == 201
    app_process("worker.py", "--queues", "email", MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    app_process("worker.py", "--scheduler")

    wait_for(lambda: mailbox.to("retry@example.com"), what="the retried email")
    assert mailbox.refused == 1
    token = mailbox.token_for("retry@example.com", "confirm")
    verified = client.post("/api/v1/auth/verify", json={"token": token})
    assert verified.status_code == 200 and verified.get_json()["is_verified"] is True

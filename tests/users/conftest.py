"""Users fixtures: read emailed links from the log (no MAIL_SERVER in tests)."""

from __future__ import annotations

import re

import pytest

TOKEN_IN_LINK = re.compile(r"verify-email\?token=([A-Za-z0-9_\-]+)")


@pytest.fixture
def mailed_verify_token(caplog, run_jobs):
    """`mailed_verify_token()`: run the queued email jobs and return the last verification token."""
    caplog.set_level("INFO", logger="project.mail")

    def latest() -> str | None:
        run_jobs(("email",))
        tokens = TOKEN_IN_LINK.findall(caplog.text)
        return tokens[-1] if tokens else None

    return latest


@pytest.fixture
def tokens_of(client):
    """`tokens_of(user)` logs the user in through the API and returns the token pair."""

    def login(user: dict) -> dict:
        response = client.post(
            "/api/v1/auth/login", json={"email": user["email"], "password": user["password"]}
        )
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return login

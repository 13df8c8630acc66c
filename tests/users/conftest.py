"""Users fixtures: read emailed links from the log (no MAIL_SERVER in tests)."""

from __future__ import annotations

import pytest

from tests.helpers import link_tokens


@pytest.fixture
def mailed_verify_token(caplog, run_jobs):
    """`mailed_verify_token()`: run the queued email jobs and return the last verification token."""
    caplog.set_level("INFO", logger="project.mail")

    def latest() -> str | None:
        run_jobs(("email",))
        tokens = link_tokens(caplog.text, "verify-email")
        return tokens[-1] if tokens else None

    return latest

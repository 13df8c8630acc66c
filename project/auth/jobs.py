"""Auth's jobs that call its service (emails are in auth/emails.py), and its periodic jobs.

The service queues `send_password_reset_job` by its dotted path (`service.PASSWORD_RESET_JOB`):
this module imports the service, so the service does not import it.
"""

from __future__ import annotations

import logging

from project.auth import emails, service
from project.auth.emails import queue_password_reset_email
from project.jobs import PeriodicJob

log = logging.getLogger(__name__)


def send_password_reset_job(key: str) -> bool:
    """`POST /password/forgot`, in the background: the account is looked up here, so the
    request does the same work whether or not it exists. Sends through its own job (with
    the email retries), so a retry never counts toward MAIL_RATE_LIMIT twice."""
    user_id = service.request_password_reset(key)
    return user_id is not None and queue_password_reset_email(user_id) is not None


def prune_login_failures() -> int:
    count = service.prune_login_failures()
    log.info("pruned %s old failed login(s)", count)
    return count


PERIODIC = (
    PeriodicJob(
        id="periodic-prune-login-failures",
        func=prune_login_failures,
        queue="cleanup",
        interval_seconds=3600,
    ),
)


# The dotted paths the previous release queued under (RQ stores a job's function by path): a
# job still in Redis when this release starts must find its function. Remove in the next release.
request_password_reset = send_password_reset_job
send_verification_email = emails.send_verification_email
send_password_reset_email = emails.send_password_reset_email
send_email_changed_notice = emails.send_email_changed_notice

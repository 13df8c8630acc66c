"""Periodic user jobs (`PERIODIC`, run by the scheduler: project/schedule.py)."""

from __future__ import annotations

import logging

from flask import current_app

from project.jobs import PeriodicJob
from project.users.service import delete_unverified

log = logging.getLogger(__name__)


def cleanup_unverified_users() -> int:
    """Delete the accounts still unverified after UNVERIFIED_USER_TTL_HOURS, with their sessions."""
    count = delete_unverified(current_app.config["UNVERIFIED_USER_TTL_HOURS"])
    log.info("deleted %s unverified account(s)", count)
    return count


PERIODIC = (
    PeriodicJob(
        id="periodic-cleanup-unverified-users",
        func=cleanup_unverified_users,
        queue="cleanup",
        interval_seconds=3600,
    ),
)

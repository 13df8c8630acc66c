"""Periodic user jobs (registered in project/schedule.py)."""

from __future__ import annotations

import logging

from flask import current_app

from project.users.service import delete_unverified

log = logging.getLogger(__name__)


def cleanup_unverified_users() -> int:
    """Delete the accounts still unverified after UNVERIFIED_USER_TTL_HOURS, with their sessions."""
    count = delete_unverified(current_app.config["UNVERIFIED_USER_TTL_HOURS"])
    log.info("deleted %s unverified account(s)", count)
    return count

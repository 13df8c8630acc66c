"""Auth's emails, each a job on the "email" queue, and the `queue_*` calls that queue them.

A job receives a user id and creates its token itself, so no secret ever sits in Redis; an
SMTP failure raises, and RQ retries with backoff. Nothing here calls auth's service, so the
service (and the users hooks) queue emails from here; jobs that call the service are in
auth/jobs.py."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlencode

from flask import current_app

from project.auth.tokens import RESET, VERIFY, issue_token
from project.extensions import db
from project.jobs import EnqueuedJob, enqueue
from project.mail import send_email
from project.users.models import User

log = logging.getLogger(__name__)


def _enqueue_email(func, *args) -> EnqueuedJob | None:
    """One retry per EMAIL_RETRY_BACKOFF entry (seconds), run by the scheduler at its time."""
    backoff = tuple(current_app.config["EMAIL_RETRY_BACKOFF"])
    return enqueue("email", func, *args, retries=len(backoff), backoff=backoff)


def _link(path: str, token: str) -> str:
    base = current_app.config["FRONTEND_URL"].rstrip("/")
    return f"{base}/{path}?{urlencode({'token': token})}"


def send_verification_email(user_id: int) -> bool:
    """Email a fresh verification link; skipped when the user is gone or already verified."""
    user = db.session.get(User, user_id)
    if user is None or user.is_verified:
        return False
    hours = current_app.config["VERIFY_TOKEN_EXPIRE_HOURS"]
    token = issue_token(user.id, VERIFY, timedelta(hours=hours), user.email)
    db.session.commit()  # the link works before the email leaves
    link = _link("verify-email", token)
    send_email(
        user.email,
        "Confirm your email address",
        f"Hello {user.username},\n\nConfirm your email address by opening this link:\n\n{link}\n\n"
        f"The link is valid for {hours} hours. If you did not sign up, ignore this email.\n",
    )
    return True


def send_password_reset_email(user_id: int) -> bool:
    """Email a password-reset link; skipped when the user is gone or deactivated."""
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        return False
    minutes = current_app.config["RESET_TOKEN_EXPIRE_MINUTES"]
    token = issue_token(user.id, RESET, timedelta(minutes=minutes), user.email)
    db.session.commit()
    link = _link("reset-password", token)
    send_email(
        user.email,
        "Reset your password",
        f"Hello {user.username},\n\nSet a new password by opening this link:\n\n{link}\n\n"
        f"The link is valid for {minutes} minutes and works once. If you did not ask for it, "
        "ignore this email; your password stays as it is.\n",
    )
    return True


def send_email_changed_notice(user_id: int, old_email: str) -> bool:
    """Tell the previous address that the account's email changed (no link, no token)."""
    user = db.session.get(User, user_id)
    if user is None:
        return False
    send_email(
        old_email,
        "Your email address was changed",
        f"Hello {user.username},\n\nThe email address of your account was changed from this "
        "address to another one. If you did not do this, reset your password and contact us.\n",
    )
    return True


def queue_verification_email(user_id: int) -> EnqueuedJob | None:
    job = _enqueue_email(send_verification_email, user_id)
    if job is None:
        log.error("verification email for user %s not queued (Redis down); the user can resend", user_id)
    return job


def queue_password_reset_email(user_id: int) -> EnqueuedJob | None:
    job = _enqueue_email(send_password_reset_email, user_id)
    if job is None:
        log.error("password reset email for user %s not queued (Redis down)", user_id)
    return job


def queue_email_changed_notice(user_id: int, old_email: str) -> EnqueuedJob | None:
    job = _enqueue_email(send_email_changed_notice, user_id, old_email)
    if job is None:
        log.error("email-changed notice for user %s not queued (Redis down)", user_id)
    return job

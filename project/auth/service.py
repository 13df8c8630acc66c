"""Auth: registration, login (with lockout), tokens, sessions, verification, password reset."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from project.auth import limits
from project.auth.emails import queue_verification_email
from project.auth.limits import clear_failures, login_identifier, take_password_attempt
from project.auth.models import AuthSession
from project.auth.sessions import decode, revoke_sessions, rotate_refresh_token, start_session
from project.auth.tokens import RESET, VERIFY, consume_token, retire_tokens
from project.database import utcnow
from project.errors import BadRequest, Forbidden, NotFound, Unauthorized
from project.extensions import db
from project.jobs import enqueue
from project.pagination import paginate
from project.passwords import (
    check_password_policy,
    dummy_verify,
    hash_password,
    password_needs_rehash,
    verify_password,
)
from project.users.models import User, email_key
from project.users.service import create_user, find_by_login, get_user

log = logging.getLogger(__name__)

BAD_CREDENTIALS = "Incorrect login or password."
# forgot_password's job, by path: auth/jobs.py imports this module (the job calls back here).
PASSWORD_RESET_JOB = "project.auth.jobs.send_password_reset_job"


def register(email: str, username: str, password: str) -> User:
    """Create a plain user (never an admin) and queue the verification email (it counts
    toward MAIL_RATE_LIMIT; past it, none is sent and the user can resend later)."""
    user = create_user(email, username, password)
    if limits.reserve_mails(user.id, [user.email]) is None:
        db.session.commit()
        queue_verification_email(user.id)
    return user


# --- login and lockout -----------------------------------------------------------------


def login(login_name: str, password: str, user_agent: str | None, ip: str | None) -> dict:
    """Check the credentials and open a session; returns its token pair.

    The attempt is counted against the login name as sent (its normal form) and the IP
    before the password is checked (auth/limits.py): a locked-out pair is a 429 and at most
    LOGIN_MAX_FAILURES passwords are checked per window, however many tries arrive at once.
    Unknown accounts and wrong passwords get the same 401 after the same work (a dummy hash
    check), and the lockout never depends on whether the account exists.
    """
    identifiers = [login_identifier(login_name)]
    take_password_attempt(identifiers, ip)
    user = find_by_login(login_name)
    if user is None:
        dummy_verify(password)
        raise Unauthorized(BAD_CREDENTIALS)
    if not verify_password(user.password_hash, password):
        raise Unauthorized(BAD_CREDENTIALS)
    clear_failures(identifiers, ip)  # the right password: this was no failed login
    if not user.is_active:
        db.session.commit()
        raise Forbidden("This account is deactivated.")
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    pair = start_session(user, user_agent, ip)
    db.session.commit()  # the session, the cleared failures and any rehash together
    return pair


def refresh(refresh_token: str) -> dict:
    """Rotate a refresh token into a new pair; a reused one ends its session (401)."""
    pair = rotate_refresh_token(refresh_token)
    db.session.commit()  # the rotation, or the revocation of a reused token's session
    if pair is None:
        raise Unauthorized(
            "Refresh token has already been used; the session is revoked.", error="token_revoked"
        )
    return pair


def prune_login_failures(older_than: timedelta = timedelta(days=1)) -> int:
    """Drop failed logins and mail counts older than `older_than` (the limits look back
    minutes to an hour); returns the count."""
    count = limits.prune(older_than)
    db.session.commit()
    return count


# --- sessions --------------------------------------------------------------------------


def logout(user_id: int, session_id: str, refresh_token: str | None = None) -> None:
    """End the access token's session, and the refresh token's if it is this user's."""
    ids = [session_id]
    if refresh_token:
        try:
            claims = decode(refresh_token, "refresh")
        except Unauthorized:
            claims = None
        if claims and int(claims["sub"]) == user_id:
            ids.append(claims["sid"])
    revoke_sessions(session_ids=ids, user_id=user_id)
    db.session.commit()


def _live_sessions(user_id: int):
    return select(AuthSession).where(
        AuthSession.user_id == user_id,
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > utcnow(),
    )


def list_sessions(user_id: int, current_session_id: str, page: int, per_page: int) -> dict:
    result = paginate(
        _live_sessions(user_id).order_by(AuthSession.created_at.desc(), AuthSession.id), page, per_page
    )
    result["items"] = [
        {
            "id": s.id,
            "created_at": s.created_at,
            "last_used_at": s.last_used_at,
            "user_agent": s.user_agent,
            "ip": s.ip,
            "current": s.id == current_session_id,
        }
        for s in result["items"]
    ]
    return result


def delete_session(user_id: int, session_id: str) -> None:
    """End one of the user's own live sessions; anyone else's (or an unknown id) is a 404."""
    found = len(session_id) <= 36 and db.session.scalar(
        _live_sessions(user_id).where(AuthSession.id == session_id)
    )
    if not found:
        raise NotFound("Session not found.")
    revoke_sessions(session_ids=[session_id], user_id=user_id)
    db.session.commit()


# --- email verification and password reset ---------------------------------------------


def verify_email(token: str) -> User:
    user_id = consume_token(token, VERIFY)
    user = db.session.get(User, user_id) if user_id is not None else None
    if user is None:
        db.session.rollback()
        raise BadRequest("The verification link is invalid, expired or already used.", error="invalid_link")
    user.is_verified = True
    db.session.commit()
    return user


def resend_verification(user_id: int) -> None:
    """Queue a new verification email (none when verified); past MAIL_RATE_LIMIT, a 429."""
    user = get_user(user_id)
    if not user.is_verified:
        limits.require_mails(user.id, [user.email])
        db.session.commit()
        queue_verification_email(user_id)


def forgot_password(email: str) -> None:
    """Queue the reset request; the job looks the account up (auth/jobs.py). The request does
    the same work whether or not an account has this email, so its time tells nothing."""
    if enqueue("email", PASSWORD_RESET_JOB, email_key(email)) is None:
        log.error("password reset request not queued (Redis down)")


def request_password_reset(key: str) -> int | None:
    """The job's side of `forgot_password` (`jobs.send_password_reset_job`): the id of the
    active account with this email key whose reset mail fits MAIL_RATE_LIMIT (counted,
    committed), else None (nothing sent)."""
    user = db.session.scalar(select(User).where(User.email_key == key))
    if user is None or not user.is_active or limits.reserve_mails(user.id, [user.email]) is not None:
        db.session.rollback()
        return None
    db.session.commit()
    return user.id


def reset_password(token: str, new_password: str) -> None:
    """Set a new password from an emailed token; every session of the user ends."""
    check_password_policy(new_password, field="new_password")
    user_id = consume_token(token, RESET)
    user = db.session.get(User, user_id) if user_id is not None else None
    if user is None:
        db.session.rollback()
        raise BadRequest("The reset link is invalid, expired or already used.", error="invalid_link")
    user.password_hash = hash_password(new_password)
    # Opening the emailed link proves the address is theirs.
    user.is_verified = True
    retire_tokens(user.id, RESET)
    revoke_sessions(user_id=user.id)
    db.session.commit()

"""Auth: registration, login (with lockout), tokens, sessions, verification, password reset."""

from __future__ import annotations

import math
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select

from project.auth.jobs import queue_password_reset_email, queue_verification_email
from project.auth.models import AuthSession, LoginFailure
from project.auth.sessions import decode, revoke_sessions, rotate_refresh_token, start_session
from project.auth.tokens import RESET, VERIFY, consume_token, retire_tokens
from project.database import rowcount, utcnow
from project.errors import BadRequest, Forbidden, NotFound, TooManyRequests, Unauthorized
from project.extensions import db
from project.pagination import paginate
from project.passwords import (
    check_password_policy,
    dummy_verify,
    hash_password,
    password_needs_rehash,
    verify_password,
)
from project.users.models import User, normal_form
from project.users.service import create_user, find_by_login, get_user

BAD_CREDENTIALS = "Incorrect login or password."


def register(email: str, username: str, password: str) -> User:
    """Create a plain user (never an admin) and queue the verification email."""
    user = create_user(email, username, password)
    queue_verification_email(user.id)
    return user


# --- login and lockout -----------------------------------------------------------------


def _lockout_window() -> timedelta:
    return timedelta(minutes=current_app.config["LOGIN_LOCKOUT_MINUTES"])


def _lockout_retry_after(identifier: str, ip: str) -> int | None:
    """Seconds until a login may be tried again, or None when not locked out."""
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    now = utcnow()
    recent = db.session.scalars(
        select(LoginFailure.failed_at)
        .where(
            LoginFailure.identifier == identifier,
            LoginFailure.ip == ip,
            LoginFailure.failed_at > now - _lockout_window(),
        )
        .order_by(LoginFailure.failed_at.desc())
        .limit(limit)
    ).all()
    if len(recent) < limit:
        return None
    return max(1, math.ceil((recent[-1] + _lockout_window() - now).total_seconds()))


def _record_failure(identifier: str, ip: str) -> None:
    now = utcnow()
    db.session.execute(
        delete(LoginFailure).where(
            LoginFailure.identifier == identifier,
            LoginFailure.ip == ip,
            LoginFailure.failed_at <= now - _lockout_window(),
        )
    )
    db.session.add(LoginFailure(identifier=identifier, ip=ip, failed_at=now))
    db.session.commit()


def login(login_name: str, password: str, user_agent: str | None, ip: str | None) -> dict:
    """Check the credentials and open a session; returns its token pair.

    Unknown accounts and wrong passwords get the same 401 after the same work (a dummy hash
    check). Failures count per login name and IP, existing account or not; a locked-out
    pair is a 429 before any password is checked.
    """
    user = find_by_login(login_name)
    # An account's failures count together whether it was named by email or by username.
    identifier = f"user:{user.id}" if user else f"login:{normal_form(login_name)}"[:255]
    ip = (ip or "unknown")[:64]
    retry_after = _lockout_retry_after(identifier, ip)
    if retry_after is not None:
        raise TooManyRequests("Too many failed logins; try again later.", retry_after, error="login_locked")
    if user is None:
        dummy_verify(password)
        _record_failure(identifier, ip)
        raise Unauthorized(BAD_CREDENTIALS)
    if not verify_password(user.password_hash, password):
        _record_failure(identifier, ip)
        raise Unauthorized(BAD_CREDENTIALS)
    if not user.is_active:
        raise Forbidden("This account is deactivated.")
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    db.session.execute(
        delete(LoginFailure).where(LoginFailure.identifier == identifier, LoginFailure.ip == ip)
    )
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
    """Drop failed logins older than `older_than` (the lockout looks back minutes); returns the count."""
    count = rowcount(
        db.session.execute(delete(LoginFailure).where(LoginFailure.failed_at < utcnow() - older_than))
    )
    db.session.commit()
    return int(count)


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
    if not get_user(user_id).is_verified:
        queue_verification_email(user_id)


def forgot_password(email: str) -> None:
    """Queue a reset email when an active account has this email; silent either way."""
    user = db.session.scalar(select(User).where(User.email_key == normal_form(email)))
    if user is not None and user.is_active:
        queue_password_reset_email(user.id)


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

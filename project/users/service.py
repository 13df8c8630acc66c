"""Users: profile, admin management, roles and the last-admin rule, deletion, cleanup."""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from project.database import contains, rowcount, utcnow
from project.errors import Conflict, Forbidden, NotFound, field_error
from project.extensions import db
from project.guard import Actor, Role
from project.pagination import paginate
from project.passwords import check_password_policy, hash_password
from project.users.hooks import account_hooks
from project.users.models import User, email_key, login_key, normal_form


def normalize_email(email: str) -> str:
    """The form an email is stored (and mailed) in; accounts are told apart by `normal_form`."""
    return unicodedata.normalize("NFKC", email).strip().lower()


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("User not found.")
    return user


def own_account(actor: Actor) -> User:
    """The caller's account in the request's session. Built from the columns the token check
    read in this request (no second query) unless the session holds it already; a service may
    change it and commit."""
    known = db.session.identity_map.get(db.session.identity_key(User, actor.id))
    if known is not None:
        return known
    if not actor.profile:  # an Actor made without the token check's read
        return get_user(actor.id)
    user = User(**actor.profile)
    make_transient_to_detached(user)
    db.session.add(user)  # detached -> persistent: into the identity map, no query
    return user


def get_visible_user(viewer: Actor, user_id: int) -> User:
    """Admins see everyone; others only themselves (anyone else is a 404, not a 403)."""
    if viewer.id == user_id:
        return own_account(viewer)
    if not viewer.is_admin and viewer.id != user_id:
        raise NotFound("User not found.")
    return get_user(user_id)


def find_by_login(login: str) -> User | None:
    """The user a login name means: an email when it has an '@', else a username."""
    key = login_key(login)
    column = User.email_key if "@" in normal_form(login) else User.username_key
    return db.session.scalar(select(User).where(column == key))


def ensure_available(email: str | None, username: str | None, exclude_id: int | None = None) -> None:
    """409 if another account has this email or username (both compared in their normal form)."""
    for field, column, key in (
        ("email", User.email_key, email_key),
        ("username", User.username_key, normal_form),
    ):
        value = email if field == "email" else username
        if value is None:
            continue
        stmt = select(User.id).where(column == key(value))
        if exclude_id is not None:
            stmt = stmt.where(User.id != exclude_id)
        if db.session.scalar(stmt.limit(1)) is not None:
            raise Conflict(
                f"That {field} is already taken.",
                errors={"json": {field: ["Already taken."]}},
                error=f"{field}_taken",
            )


def commit_unique() -> None:
    """Commit; a concurrent duplicate that slipped past `ensure_available` is still a 409."""
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        # The constraint's name says which (users.email_key or users.username_key).
        field = "email" if "email" in str(exc.orig) else "username"
        raise Conflict(
            f"That {field} is already taken.",
            errors={"json": {field: ["Already taken."]}},
            error=f"{field}_taken",
        ) from exc


def create_user(
    email: str, username: str, password: str, *, role: str = Role.USER, verified: bool = False
) -> User:
    email = normalize_email(email)
    check_password_policy(password)
    ensure_available(email, username)
    user = User(
        email=email,
        username=username,
        password_hash=hash_password(password),
        role=Role(role).value,
        is_active=True,
        is_verified=verified,
    )
    db.session.add(user)
    commit_unique()
    return user


def _change_email(user: User, email: str, verified: bool | None = None) -> str | None:
    """Set a new email, unverified until proven (unless `verified` says otherwise); returns the
    old address when it changed, else None."""
    email = normalize_email(email)
    if email == user.email:
        return None
    ensure_available(email, None, exclude_id=user.id)
    old_email, user.email = user.email, email
    user.is_verified = bool(verified)
    # Links mailed to the old address must not prove (or reset) the new one: same commit.
    account_hooks().retire_links(user.id)
    return old_email


def _check_current_password(user: User, current_password: str | None, change: str, ip: str | None) -> None:
    """A wrong current password counts as a failed login of the account's email and username
    (else it would be a password oracle past the lockout); once they are locked, a 429."""
    if current_password is None:
        raise field_error("current_password", f"The current password is required to change the {change}.")
    if not account_hooks().check_password(user, current_password, ip):
        raise Forbidden("The current password is wrong.", error="wrong_password")


def update_me(actor: Actor, changes: dict[str, Any], ip: str | None = None) -> User:
    """Profile update (username, email, password with current_password). Changing the password
    or the email needs the current password (a stolen access token alone cannot take the
    account; wrong ones count toward the login lockout from `ip`); a new password ends every
    other session in the same commit; a new email is unverified until its link is opened
    (every earlier link retired in that commit), and the old address is told: two mails
    within MAIL_RATE_LIMIT, else a 429 and no change."""
    username, email = changes.get("username"), changes.get("email")
    password, current_password = changes.get("password"), changes.get("current_password")
    user = own_account(actor)
    email_changes = email is not None and normalize_email(email) != user.email
    if password is not None:
        _check_current_password(user, current_password, "password", ip)
        check_password_policy(password)
    elif email_changes:
        _check_current_password(user, current_password, "email", ip)
    if username is not None and username != user.username:
        ensure_available(None, username, exclude_id=user.id)
        user.username = username
    old_email = _change_email(user, email) if email is not None else None
    if old_email is not None:
        account_hooks().reserve_mails(user.id, [user.email, old_email])
    if password is not None:
        user.password_hash = hash_password(password)
        account_hooks().retire_reset_tokens(user.id)
        account_hooks().end_sessions(user.id, actor.session_id)
    commit_unique()
    if old_email is not None:
        account_hooks().send_verification(user.id)
        account_hooks().notify_email_changed(user.id, old_email)
    return user


def list_users(
    page: int, per_page: int, q: str | None = None, role: str | None = None, is_active: bool | None = None
) -> dict:
    stmt = select(User).order_by(User.id)
    if q:
        stmt = stmt.where(or_(contains(func.lower(User.email), q), contains(func.lower(User.username), q)))
    if role is not None:
        stmt = stmt.where(User.role == role)
    if is_active is not None:
        stmt = stmt.where(User.is_active == is_active)
    return paginate(stmt, page, per_page)


def _other_active_admins(user_id: int) -> int:
    """Active admins besides `user_id`. Every active admin row is locked in id order
    (PostgreSQL), so two admins demoting each other at once queue up instead of both
    succeeding (or deadlocking), and the second then sees it is the last one."""
    ids = db.session.scalars(
        select(User.id)
        .where(User.role == Role.ADMIN, User.is_active.is_(True))
        .order_by(User.id)
        .with_for_update()
    ).all()
    return sum(1 for admin_id in ids if admin_id != user_id)


def _guard_last_admin(user: User, action: str) -> None:
    if user.role == Role.ADMIN and user.is_active and _other_active_admins(user.id) == 0:
        raise Conflict(f"Cannot {action} the last active admin.", error="last_admin")


def admin_update_user(user_id: int, changes: dict[str, Any]) -> User:
    """Admin update of username, email, is_active, is_verified; deactivating ends every session."""
    username, email = changes.get("username"), changes.get("email")
    is_active, is_verified = changes.get("is_active"), changes.get("is_verified")
    user = get_user(user_id)
    if is_active is False:
        _guard_last_admin(user, "deactivate")
    if username is not None and username != user.username:
        ensure_available(None, username, exclude_id=user.id)
        user.username = username
    old_email = _change_email(user, email, is_verified) if email is not None else None
    if is_verified is not None:
        user.is_verified = is_verified
    deactivating = is_active is False and user.is_active
    if is_active is not None:
        user.is_active = is_active
    if deactivating:
        account_hooks().end_sessions(user.id, None)
    commit_unique()
    if old_email is not None:
        if not user.is_verified:
            account_hooks().send_verification(user.id)
        account_hooks().notify_email_changed(user.id, old_email)
    return user


def set_role(user_id: int, role: str) -> User:
    user = get_user(user_id)
    if role != Role.ADMIN:
        _guard_last_admin(user, "demote")
    user.role = role
    db.session.commit()
    return user


def deactivate_user(user_id: int) -> User:
    """Deactivate and end every session at once (its access and refresh tokens are 401)."""
    return admin_update_user(user_id, {"is_active": False})


def activate_user(user_id: int) -> User:
    return admin_update_user(user_id, {"is_active": True})


def delete_user(user_id: int) -> None:
    """Hard delete; sessions and tokens go with it (ON DELETE CASCADE), orders keep a NULL user."""
    user = get_user(user_id)
    _guard_last_admin(user, "delete")
    db.session.delete(user)
    db.session.commit()


def delete_unverified(ttl_hours: int) -> int:
    """Delete non-admin accounts still unverified `ttl_hours` after sign-up; returns the count."""
    now = utcnow()
    count = rowcount(
        db.session.execute(
            delete(User)
            .where(
                User.is_verified.is_(False),
                User.role != Role.ADMIN,
                User.created_at < now - timedelta(hours=ttl_hours),
            )
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    return count

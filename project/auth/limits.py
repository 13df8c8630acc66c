"""Abuse limits on accounts: the login lockout and MAIL_RATE_LIMIT.

Both are counted in database tables, so they hold in every process with or without Redis.

- Lockout: failures are counted per identifier as sent (the email or username, in its
  normal form, whether or not an account has it) and client IP. An attempt is counted as a
  failure BEFORE its password is checked (`take_password_attempt`), under a lock on the
  counter, so tries arriving at once still check at most LOGIN_MAX_FAILURES passwords per
  window; a right password then clears the counter. A locked pair is a 429 with Retry-After.
- Mail: each mail queued is a row under `to:<address>` and `by:<account id>`; past
  MAIL_RATE_LIMIT within its window, no mail is sent (`reserve_mails` says when one may be).

Nothing here commits except `take_password_attempt` (the attempt must count even when the
request then fails); the caller owns the rest of the transaction.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from datetime import datetime, timedelta

from flask import current_app
from limits import parse
from sqlalchemy import delete, select, text

from project.auth.models import LoginFailure, MailSend
from project.database import rowcount, utcnow
from project.errors import TooManyRequests
from project.extensions import db
from project.users.models import IDENTITY_MAX, email_key, login_key

LOCKED_MESSAGE = "Too many failed logins; try again later."
# SQLite has no advisory locks; its one process (development) serialises here instead
# (PostgreSQL: only attempts on the same counter wait on each other).
_local_lock = threading.Lock()


def _serialise(keys: Iterable[str]) -> None:
    """Hold `keys` until the transaction ends: on PostgreSQL an advisory transaction lock per
    key, taken in sorted order (two requests never wait on each other crosswise)."""
    if db.engine.dialect.name != "postgresql":
        return
    for key in sorted(set(keys)):
        db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


def _retry_after(times: list[datetime], limit: int, window: timedelta, now: datetime) -> int | None:
    """Seconds until the oldest of the last `limit` events leaves the window; None when fewer."""
    if len(times) < limit:
        return None
    return max(1, math.ceil((min(times) + window - now).total_seconds()))


# --- the login lockout -------------------------------------------------------------------


def login_identifier(login_name: str) -> str:
    """The counter a login name counts under: the key it is looked up by (its normal form; an
    email's skeleton), account or not, so a look-alike spelling is no fresh counter."""
    return f"login:{login_key(login_name)}"[:IDENTITY_MAX]


def _lockout_window() -> timedelta:
    return timedelta(minutes=current_app.config["LOGIN_LOCKOUT_MINUTES"])


def _recent_failures(identifier: str, ip: str, since: datetime, limit: int) -> list[datetime]:
    return list(
        db.session.scalars(
            select(LoginFailure.failed_at)
            .where(
                LoginFailure.identifier == identifier, LoginFailure.ip == ip, LoginFailure.failed_at > since
            )
            .order_by(LoginFailure.failed_at.desc())
            .limit(limit)
        )
    )


def take_password_attempt(identifiers: Iterable[str], ip: str | None) -> None:
    """Count one password check against each identifier from `ip`, before it is made.

    429 (nothing counted) when any of them is locked out. Commits, so the count holds even if
    the check then fails; concurrent attempts queue on the counter's lock.
    """
    limit, window = current_app.config["LOGIN_MAX_FAILURES"], _lockout_window()
    keys, ip = sorted(set(identifiers)), (ip or "unknown")[:64]
    with _local_lock if db.engine.dialect.name != "postgresql" else nullcontext():
        _serialise(f"{key}|{ip}" for key in keys)
        now = utcnow()
        waits = [
            _retry_after(_recent_failures(key, ip, now - window, limit), limit, window, now) for key in keys
        ]
        locked = [wait for wait in waits if wait is not None]
        if locked:
            db.session.rollback()  # ends the transaction and its locks
            raise TooManyRequests(LOCKED_MESSAGE, max(locked), error="login_locked")
        db.session.execute(
            delete(LoginFailure).where(
                LoginFailure.identifier.in_(keys),
                LoginFailure.ip == ip,
                LoginFailure.failed_at <= now - window,
            )
        )
        db.session.add_all(LoginFailure(identifier=key, ip=ip, failed_at=now) for key in keys)
        db.session.commit()


def clear_failures(identifiers: Iterable[str], ip: str | None) -> None:
    """A right password: the identifiers' failures from `ip` are forgotten (no commit)."""
    db.session.execute(
        delete(LoginFailure).where(
            LoginFailure.identifier.in_(list(identifiers)), LoginFailure.ip == (ip or "unknown")[:64]
        )
    )


def guarded_password_check(identifiers: Iterable[str], ip: str | None, check: Callable[[], bool]) -> bool:
    """`check()` (a password verification) counted as a login attempt of `identifiers`:
    429 when they are locked out; a right password clears their failures (no commit)."""
    identifiers = list(identifiers)
    take_password_attempt(identifiers, ip)
    if not check():
        return False
    clear_failures(identifiers, ip)
    return True


def account_identifiers(email: str, username: str) -> list[str]:
    """The counters a check of this account's password counts under (PATCH /users/me)."""
    return [login_identifier(email), login_identifier(username)]


# --- MAIL_RATE_LIMIT ---------------------------------------------------------------------


def _mail_limit() -> tuple[int, timedelta]:
    item = parse(current_app.config["MAIL_RATE_LIMIT"])
    return item.amount, timedelta(seconds=item.get_expiry())


def _mail_keys(account_id: int, addresses: list[str]) -> list[str]:
    return [f"by:{account_id}"] * len(addresses) + [f"to:{email_key(a)}"[:IDENTITY_MAX] for a in addresses]


def reserve_mails(account_id: int, addresses: list[str]) -> int | None:
    """Count one mail to each of `addresses`, caused by `account_id`, if all fit in
    MAIL_RATE_LIMIT (no commit: the rows go with the caller's transaction); else count
    nothing and return the seconds until they would fit."""
    limit, window = _mail_limit()
    keys = _mail_keys(account_id, addresses)
    _serialise(f"mail|{key}" for key in keys)
    now = utcnow()
    waits = []
    for key in set(keys):
        needed = keys.count(key)
        times = list(
            db.session.scalars(
                select(MailSend.sent_at)
                .where(MailSend.key == key, MailSend.sent_at > now - window)
                .order_by(MailSend.sent_at.desc())
                .limit(limit)
            )
        )
        if needed > limit:
            waits.append(math.ceil(window.total_seconds()))
        elif len(times) + needed > limit:
            # It fits once all but (limit - needed) of the recent ones have left the window.
            keep = times[: limit - needed]
            leaving = times[len(keep) :]
            waits.append(max(1, math.ceil((min(leaving) + window - now).total_seconds())))
    if waits:
        return max(waits)
    db.session.add_all(MailSend(key=key, sent_at=now) for key in keys)
    return None


def require_mails(account_id: int, addresses: list[str]) -> None:
    """`reserve_mails`, or a 429 saying when the mails would fit."""
    wait = reserve_mails(account_id, addresses)
    if wait is not None:
        raise TooManyRequests(
            "Too many emails for this account or address; try again later.", wait, error="mail_rate_limited"
        )


def prune(older_than: timedelta) -> int:
    """Drop failures and mail counts older than `older_than` (no commit); returns the count."""
    since = utcnow() - older_than
    return int(
        rowcount(db.session.execute(delete(LoginFailure).where(LoginFailure.failed_at < since)))
        + rowcount(db.session.execute(delete(MailSend).where(MailSend.sent_at < since)))
    )

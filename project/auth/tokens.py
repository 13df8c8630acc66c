"""Single-use emailed tokens (email verification, password reset).

Only a SHA-256 of a token is stored; the token itself exists in the email alone. Issuing a
new token of a purpose retires the user's earlier ones of that purpose, so only the latest
link works. A token remembers the address it was mailed to and works only while the account
still has that address; an email change also retires every link sent before it (`retire_links`,
in the change's commit). Consuming is one conditional UPDATE, so a token is used at most once
even when two requests race.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select, update

from project.auth.models import UserToken
from project.database import rowcount, utcnow
from project.extensions import db
from project.users.models import User

VERIFY = "verify"
RESET = "reset"
MAX_TOKEN_LENGTH = 512


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def retire_tokens(user_id: int, *purposes: str) -> None:
    """Mark the user's unused tokens of `purposes` as used (does not commit)."""
    db.session.execute(
        update(UserToken)
        .where(UserToken.user_id == user_id, UserToken.purpose.in_(purposes), UserToken.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def retire_links(user_id: int) -> None:
    """Every unused emailed link of the user stops working (an email change; no commit)."""
    retire_tokens(user_id, VERIFY, RESET)


def issue_token(user_id: int, purpose: str, ttl: timedelta, email: str) -> str:
    """Create a token for `user_id`, to be mailed to `email` (no commit); return it in the clear."""
    token = secrets.token_urlsafe(32)
    retire_tokens(user_id, purpose)
    now = utcnow()
    db.session.add(
        UserToken(
            user_id=user_id,
            purpose=purpose,
            token_hash=_digest(token),
            email=email,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    return token


def consume_token(token: str, purpose: str) -> int | None:
    """Spend a live token; return its user id, or None if it is unknown, expired, used, or
    mailed to an address the account no longer has.

    Does not commit: the caller commits the token's use with what it was used for.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = _digest(token)
    now = utcnow()
    spent = rowcount(
        db.session.execute(
            update(UserToken)
            .where(
                UserToken.token_hash == digest,
                UserToken.purpose == purpose,
                UserToken.used_at.is_(None),
                UserToken.expires_at > now,
                UserToken.email == select(User.email).where(User.id == UserToken.user_id).scalar_subquery(),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
    )
    if not spent:
        return None
    return db.session.scalar(select(UserToken.user_id).where(UserToken.token_hash == digest))

"""Tokens and sessions: issue, check, rotate, revoke.

The REST guard (`actor_for_token`) and the gRPC servicer (`check_token`) share one token
check: signature and expiry good, the expected token type, its session live (not logged out,
not revoked, not rotated away), and the user existing and active. Sessions are rows in the
database, so a revocation takes effect on the next request of every process at once. The
token takes three shapes on its way: its claims, the user's columns as the check read them
(`project.prepared_read`: one round trip), and the route's `Actor`.

Nothing here reads the request or commits: the calling service owns the transaction (a
password change and the end of the other sessions are one commit).
"""

from __future__ import annotations

import functools
import re
import time
import uuid
from datetime import timedelta
from typing import Any

import jwt as pyjwt
from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token
from flask_jwt_extended.config import config as jwt_config
from sqlalchemy import bindparam, select, update
from sqlalchemy import inspect as sa_inspect

from project.auth.models import AuthSession
from project.database import rowcount, utcnow
from project.errors import Unauthorized
from project.extensions import db
from project.guard import Actor
from project.prepared_read import PreparedRead
from project.routing import DB_ID_MAX
from project.users.models import User

Claims = dict[str, Any]
SESSION_ID_MAX = 36  # auth_sessions.id: a UUID


def _access_expires() -> timedelta:
    return timedelta(minutes=current_app.config["ACCESS_TOKEN_EXPIRE_MINUTES"])


def _refresh_expires() -> timedelta:
    return timedelta(days=current_app.config["REFRESH_TOKEN_EXPIRE_DAYS"])


def _token_pair(user_id: int, role: str, session_id: str, refresh_jti: str) -> dict[str, Any]:
    identity = str(user_id)
    return {
        "access_token": create_access_token(
            identity=identity,
            additional_claims={"sid": session_id, "role": role},
            expires_delta=_access_expires(),
        ),
        "refresh_token": create_refresh_token(
            identity=identity,
            additional_claims={"sid": session_id, "jti": refresh_jti},
            expires_delta=_refresh_expires(),
        ),
        "token_type": "bearer",
        "expires_in": int(_access_expires().total_seconds()),
    }


def start_session(user: User, user_agent: str | None = None, ip: str | None = None) -> dict[str, Any]:
    """Open a session for a successful login and return its first token pair (no commit)."""
    now = utcnow()
    session = AuthSession(
        id=str(uuid.uuid4()),
        user_id=user.id,
        refresh_jti=str(uuid.uuid4()),
        created_at=now,
        last_used_at=now,
        expires_at=now + _refresh_expires(),
        user_agent=(user_agent or "")[:255] or None,
        ip=(ip or "")[:64] or None,
    )
    db.session.add(session)
    return _token_pair(user.id, user.role, session.id, session.refresh_jti)


# A token's signature and claims never change, so a token verified once is remembered (the
# last VERIFIED_TOKENS of them, with the settings they were verified under) and a hit checks
# only its expiry again: PyJWT's decode is a large share of a check's CPU (bench/README.md).
# A token that fails verification is never remembered. Revocation is not a property of the
# token: the session row is read on every request.
VERIFIED_TOKENS = 4096
_now = time.time


@functools.lru_cache(maxsize=VERIFIED_TOKENS)
def _verified(token: str, key: Any, algorithms: tuple, audience: Any, issuer: Any, leeway: Any) -> Claims:
    return pyjwt.decode(
        token,
        key,
        algorithms=list(algorithms),
        audience=list(audience) if isinstance(audience, tuple) else audience,
        issuer=issuer,
        leeway=leeway,
        # `require`: PyJWT checks `exp` only when present, and a token without one never expires.
        options={"verify_aud": audience is not None, "require": ["exp"]},
    )


def decode(token: str, expected_type: str) -> Claims:
    """Check signature, expiry and type (one decode: flask-jwt-extended's `decode_token`
    decodes twice); raise Unauthorized with a clear message."""
    audience, leeway = jwt_config.decode_audience, jwt_config.leeway
    try:
        claims = _verified(
            token,
            jwt_config.decode_key,
            tuple(jwt_config.decode_algorithms),
            audience if audience is None or isinstance(audience, str) else tuple(audience),
            jwt_config.decode_issuer,
            leeway,
        )
    except pyjwt.ExpiredSignatureError as exc:
        raise Unauthorized("Token has expired.", error="token_expired") from exc
    except (pyjwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise Unauthorized("Invalid token.") from exc
    # Again on every call, as PyJWT does it: the token may have been remembered before it expired.
    seconds = leeway.total_seconds() if isinstance(leeway, timedelta) else leeway
    if int(claims["exp"]) <= _now() - seconds:
        raise Unauthorized("Token has expired.", error="token_expired")
    if claims.get("type") != expected_type:
        raise Unauthorized(f"{'An' if expected_type == 'access' else 'A'} {expected_type} token is required.")
    if not _claims_in_range(claims, expected_type, seconds):
        raise Unauthorized("Invalid token.")
    return dict(claims)  # the remembered claims stay as verified


SUBJECT = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)


def _claims_in_range(claims: Claims, token_type: str, leeway: float) -> bool:
    """Claims only our signing key can have made, and only as we make them: `sub` a user id in
    an INTEGER key's range (else a 40-digit one reaches the database as a 500), `exp` no later
    than this type's lifetime from now (plus leeway), `sid` a session id's length."""
    sub, sid, exp = claims.get("sub"), claims.get("sid"), claims["exp"]
    if not (isinstance(sub, str) and SUBJECT.fullmatch(sub) and int(sub) <= DB_ID_MAX):
        return False
    if not (isinstance(sid, str) and 0 < len(sid) <= SESSION_ID_MAX):
        return False
    lifetime = _access_expires() if token_type == "access" else _refresh_expires()
    return isinstance(exp, int | float) and exp <= _now() + lifetime.total_seconds() + leeway


# The session and user check, built once (every authenticated request runs it). Plain columns,
# not ORM entities: loading two entities through a Session costs more CPU than the round trip.
# A row means a live session (not logged out, not revoked); its columns are the user's.
USER_COLUMNS = {attr.key: attr.columns[0] for attr in sa_inspect(User).column_attrs}
LIVE_SESSION_USER = (
    select(*(column.label(key) for key, column in USER_COLUMNS.items()))
    .join_from(User, AuthSession, AuthSession.user_id == User.id)
    .where(
        AuthSession.id == bindparam("sid"), User.id == bindparam("user_id"), AuthSession.revoked_at.is_(None)
    )
)
_LIVE_SESSION_USER_READ = PreparedRead("session_and_user", LIVE_SESSION_USER, ("sid", "user_id"))


def _ids(claims: Claims) -> dict[str, Any]:
    return {"sid": claims["sid"], "user_id": int(claims["sub"])}


def _active(row: dict[str, Any] | None) -> dict[str, Any]:
    """The user's columns of a live session of an active user, else Unauthorized."""
    if row is None:
        raise Unauthorized("Token has been revoked.", error="token_revoked")
    if not row["is_active"]:
        raise Unauthorized("Account is deactivated.", error="token_revoked")
    return row


def check_token(token: str, expected_type: str = "access") -> tuple[dict[str, Any], Claims]:
    """The one token check, for REST and gRPC: the user's columns as read now (by name:
    `columns["role"]`) and the token's claims. No ORM object: gRPC answers from the columns,
    and GET /users/me too."""
    claims = decode(token, expected_type)
    return _active(_LIVE_SESSION_USER_READ.first(_ids(claims))), claims


def actor_for_token(token: str) -> Actor:
    """The route guard's check (installed in project.guard when auth registers)."""
    columns, claims = check_token(token, "access")
    return Actor(id=columns["id"], role=columns["role"], session_id=claims["sid"], profile=columns)


def rotate_refresh_token(token: str) -> dict[str, Any] | None:
    """Trade a refresh token for a new pair (no commit); the presented one is spent.

    A refresh token that was already rotated away revokes its whole session (reuse
    detection) and gives None: the caller commits the revocation and answers 401. The swap
    is a conditional UPDATE, so of two concurrent refreshes with one token only one wins.
    """
    claims = decode(token, "refresh")
    # In the caller's transaction, beside the swap below: not the token check's own connection.
    row = db.session.execute(LIVE_SESSION_USER, _ids(claims)).first()
    user = _active(dict(row._mapping) if row is not None else None)
    session_id = claims["sid"]
    new_jti = str(uuid.uuid4())
    now = utcnow()
    swapped = rowcount(
        db.session.execute(
            update(AuthSession)
            .where(
                AuthSession.id == session_id,
                AuthSession.refresh_jti == claims["jti"],
                AuthSession.revoked_at.is_(None),
            )
            .values(refresh_jti=new_jti, last_used_at=now, expires_at=now + _refresh_expires())
            .execution_options(synchronize_session=False)
        )
    )
    if not swapped:
        revoke_sessions(session_ids=[session_id])
        return None
    return _token_pair(user["id"], user["role"], session_id, new_jti)


def revoke_sessions(
    *, session_ids: list[str] | None = None, user_id: int | None = None, keep: str | None = None
) -> int:
    """End sessions by id, or every session of a user (but `keep`); no commit. Returns the count."""
    stmt = update(AuthSession).where(AuthSession.revoked_at.is_(None))
    if session_ids is not None:
        stmt = stmt.where(AuthSession.id.in_(session_ids))
    if user_id is not None:
        stmt = stmt.where(AuthSession.user_id == user_id)
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    result = db.session.execute(stmt.values(revoked_at=utcnow()).execution_options(synchronize_session=False))
    return rowcount(result)

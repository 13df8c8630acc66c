"""Password hashing and policy; token issue, check and revocation.

The REST API (`auth_required`) and the gRPC servicer (`authenticate`) share one token check:
signature and expiry good, the expected token type, its session live (not logged out, not
revoked, not rotated away), and the user existing and active. Sessions are rows in the
database, so a revocation takes effect on the next request of every process at once.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from functools import wraps

import jwt as pyjwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g, has_request_context, request
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token
from flask_smorest import Blueprint
from sqlalchemy import select, update

from project.auth.models import AuthSession
from project.database import utcnow
from project.errors import Forbidden, Unauthorized, field_error
from project.extensions import db
from project.users.models import User

# --- passwords -------------------------------------------------------------------------

PASSWORD_RULES = (
    (lambda p: len(p) >= 8, "Password must be at least 8 characters long."),
    (lambda p: re.search(r"[A-Z]", p), "Password must contain an upper-case letter."),
    (lambda p: re.search(r"[a-z]", p), "Password must contain a lower-case letter."),
    (lambda p: re.search(r"\d", p), "Password must contain a digit."),
    (lambda p: re.search(r"[^A-Za-z0-9]", p), "Password must contain a symbol."),
)
MAX_PASSWORD_LENGTH = 128


def check_password_policy(password: str, field: str = "password") -> None:
    """Raise a 422 naming the first rule the password breaks."""
    if len(password) > MAX_PASSWORD_LENGTH:
        raise field_error(field, f"Password must be at most {MAX_PASSWORD_LENGTH} characters long.")
    for rule, message in PASSWORD_RULES:
        if not rule(password):
            raise field_error(field, message)


def _hasher() -> PasswordHasher:
    """Argon2id with the configured cost; one instance per app."""
    hasher = current_app.extensions.get("password_hasher")
    if hasher is None:
        config = current_app.config
        hasher = PasswordHasher(
            time_cost=config.get("PASSWORD_HASH_TIME_COST", 3),
            memory_cost=config.get("PASSWORD_HASH_MEMORY_COST", 65536),
            parallelism=config.get("PASSWORD_HASH_PARALLELISM", 4),
        )
        current_app.extensions["password_hasher"] = hasher
    return hasher


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


# A hash to verify against when the account does not exist, so that unknown accounts
# take as long as wrong passwords (no account enumeration by timing).
def dummy_verify(password: str) -> None:
    dummy = current_app.extensions.get("password_dummy_hash")
    if dummy is None:
        dummy = current_app.extensions["password_dummy_hash"] = hash_password(uuid.uuid4().hex)
    verify_password(dummy, password)


# --- tokens ----------------------------------------------------------------------------


def _access_expires() -> timedelta:
    return timedelta(minutes=current_app.config["ACCESS_TOKEN_EXPIRE_MINUTES"])


def _refresh_expires() -> timedelta:
    return timedelta(days=current_app.config["REFRESH_TOKEN_EXPIRE_DAYS"])


def _token_pair(user: User, session: AuthSession) -> dict:
    identity = str(user.id)
    claims = {"sid": session.id, "role": user.role}
    return {
        "access_token": create_access_token(
            identity=identity, additional_claims=claims, expires_delta=_access_expires()
        ),
        "refresh_token": create_refresh_token(
            identity=identity,
            additional_claims={"sid": session.id, "jti": session.refresh_jti},
            expires_delta=_refresh_expires(),
        ),
        "token_type": "bearer",
        "expires_in": int(_access_expires().total_seconds()),
    }


def start_session(user: User, user_agent: str | None = None, ip: str | None = None) -> dict:
    """Open a session for a successful login and return its first token pair (commits)."""
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
    db.session.commit()
    return _token_pair(user, session)


def decode(token: str, expected_type: str) -> dict:
    """Check signature, expiry and type; raise Unauthorized with a clear message."""
    try:
        claims = decode_token(token)
    except pyjwt.ExpiredSignatureError as exc:
        raise Unauthorized("Token has expired.") from exc
    except (pyjwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise Unauthorized("Invalid token.") from exc
    except Exception as exc:  # flask-jwt-extended's own decode errors
        raise Unauthorized("Invalid token.") from exc
    if claims.get("type") != expected_type:
        raise Unauthorized(f"{'An' if expected_type == 'access' else 'A'} {expected_type} token is required.")
    # PyJWT checks `exp` only when present: a signed token without one would never expire.
    if "exp" not in claims or not claims.get("sid") or not str(claims.get("sub", "")).isdigit():
        raise Unauthorized("Invalid token.")
    return claims


def _live_session_user(claims: dict) -> tuple[User, AuthSession]:
    row = db.session.execute(
        select(User, AuthSession)
        .join(AuthSession, AuthSession.user_id == User.id)
        .where(AuthSession.id == claims["sid"], User.id == int(claims["sub"]))
    ).first()
    if row is None:
        raise Unauthorized("Token has been revoked.")
    user, session = row
    if session.revoked_at is not None:
        raise Unauthorized("Token has been revoked.")
    if not user.is_active:
        raise Unauthorized("Account is deactivated.")
    return user, session


def authenticate(token: str, expected_type: str = "access") -> tuple[User, dict]:
    """The one token check, for REST and gRPC: returns the user and the token's claims."""
    claims = decode(token, expected_type)
    user, _session = _live_session_user(claims)
    return user, claims


def rotate_refresh_token(token: str) -> dict:
    """Trade a refresh token for a new pair; the presented one is spent.

    Presenting a refresh token that was already rotated away revokes its whole session
    (reuse detection). The swap is a conditional UPDATE, so of two concurrent refreshes
    with one token only one wins.
    """
    claims = decode(token, "refresh")
    user, session = _live_session_user(claims)
    new_jti = str(uuid.uuid4())
    now = utcnow()
    swapped = db.session.execute(
        update(AuthSession)
        .where(
            AuthSession.id == session.id,
            AuthSession.refresh_jti == claims["jti"],
            AuthSession.revoked_at.is_(None),
        )
        .values(refresh_jti=new_jti, last_used_at=now, expires_at=now + _refresh_expires())
        .execution_options(synchronize_session=False)
    ).rowcount
    if not swapped:
        revoke_sessions(session_ids=[session.id])
        raise Unauthorized("Refresh token has already been used; the session is revoked.")
    db.session.commit()
    db.session.refresh(session)
    return _token_pair(user, session)


def revoke_sessions(
    *, session_ids: list[str] | None = None, user_id: int | None = None, keep: str | None = None
) -> int:
    """End sessions by id, or every session of a user (but `keep`); commits. Returns the count."""
    stmt = update(AuthSession).where(AuthSession.revoked_at.is_(None))
    if session_ids is not None:
        stmt = stmt.where(AuthSession.id.in_(session_ids))
    if user_id is not None:
        stmt = stmt.where(AuthSession.user_id == user_id)
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    count = db.session.execute(
        stmt.values(revoked_at=utcnow()).execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return count


def expires_at(claims: dict) -> datetime:

    return datetime.fromtimestamp(claims["exp"], tz=UTC)


# --- route guard -----------------------------------------------------------------------

BEARER_DOC = {"security": [{"bearerAuth": []}]}


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Missing bearer token.")
    return token.strip()


def auth_required(*roles: str):
    """Route decorator: a live access token, and one of `roles` when given (else 403).

    The user (with role and active flag read now) is in `g.current_user`, the claims in
    `g.token_claims`.
    """

    def decorator(func):
        @wraps(func)
        def wrapper(*args, **kwargs):
            user, claims = authenticate(bearer_token(), "access")
            g.current_user, g.token_claims = user, claims
            if roles and user.role not in roles:
                raise Forbidden("You are not allowed to do this.")
            return func(*args, **kwargs)

        return Blueprint.doc(**BEARER_DOC)(wrapper)

    return decorator


def current_user() -> User:
    return g.current_user


def client_ip() -> str | None:
    return request.remote_addr if has_request_context() else None

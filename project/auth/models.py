"""Auth's tables: login sessions, emailed single-use tokens, failed logins, mails sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from project.database import UTCDateTime, utcnow
from project.extensions import Model


class AuthSession(Model):
    """One login, followed through its refresh rotations.

    Every token carries the session id (`sid` claim); a token is live only while its session
    is. `refresh_jti` is the one refresh token of the session that may still be used.
    """

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    refresh_jti: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str | None] = mapped_column(String(255))
    ip: Mapped[str | None] = mapped_column(String(64))


class UserToken(Model):
    """A single-use emailed token (email verification, password reset), stored hashed."""

    __tablename__ = "user_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The address the link was mailed to: it works only while the account still has it.
    email: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginFailure(Model):
    """One failed login, keyed by the login name tried (existing account or not) and the IP."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_identifier_ip_failed_at", "identifier", "ip", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(255))
    ip: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MailSend(Model):
    """One mail queued, counted under `key` (`to:<address>` and `by:<account id>`) for
    MAIL_RATE_LIMIT; a database table, so the limit holds in every process, Redis or not."""

    __tablename__ = "mail_sends"
    __table_args__ = (Index("ix_mail_sends_key_sent_at", "key", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

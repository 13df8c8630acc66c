from __future__ import annotations

import unicodedata
from datetime import datetime

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column, validates

from project.database import UTCDateTime, utcnow
from project.extensions import Model
from project.guard import Role

IDENTITY_MAX = 255


def normal_form(value: str) -> str:
    """How emails and usernames are compared: Unicode NFKC, case-folded, without surrounding
    whitespace, so no two accounts differ only in width, case or a trailing newline."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).strip().casefold())


class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    # The normal forms, kept by the validators below; uniqueness is decided on them.
    email_key: Mapped[str] = mapped_column(String(IDENTITY_MAX), unique=True)
    username_key: Mapped[str] = mapped_column(String(IDENTITY_MAX), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default=Role.USER.value, index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    is_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @validates("email", "username")
    def _keep_normal_form(self, field: str, value: str) -> str:
        setattr(self, f"{field}_key", normal_form(value))
        return value

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username} {self.role}>"

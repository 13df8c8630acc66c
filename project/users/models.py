from __future__ import annotations

import json
import unicodedata
from datetime import datetime
from functools import cache
from importlib import resources

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


@cache
def _confusables() -> dict[str, list[dict[str, str]]]:
    """Unicode TR39's confusables, as confusable-homoglyphs ships them: each character with
    the characters it can be mistaken for."""
    return json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )


@cache
def _prototype(char: str) -> str:
    """The ASCII letter or digit a non-ASCII character passes for (`ı`, Cyrillic `а`, Greek
    `ο`), else the character itself. ASCII is left as it is, so no two ASCII addresses ever
    collide (TR39 would make `0` and `o`, `rn` and `m` one)."""
    if char.isascii():
        return char
    glyphs = {g["c"].strip("\u200e").casefold() for g in _confusables().get(char, ())}
    candidates = sorted(g for g in glyphs if len(g) == 1 and g.isascii() and g.isalnum())
    letters = [g for g in candidates if g.isalpha()]
    return (letters or candidates or [char])[0]


def skeleton(value: str) -> str:
    """A TR39-style confusable skeleton of a normal form: NFD, each character replaced by the
    ASCII one it looks like (`_prototype`), NFC again."""
    return unicodedata.normalize("NFC", "".join(map(_prototype, unicodedata.normalize("NFD", value))))


def email_key(email: str) -> str:
    """How emails are told apart: the normal form's skeleton, so `alıce@` (dotless ı) or
    `аlice@` (Cyrillic а) is the account `alice@`."""
    return skeleton(normal_form(email))


def login_key(login: str) -> str:
    """The key a login name is looked up (and its failures counted) by: an email's
    `email_key` when it has an '@', else a username's normal form."""
    key = normal_form(login)
    return skeleton(key) if "@" in key else key


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
        setattr(self, f"{field}_key", email_key(value) if field == "email" else normal_form(value))
        return value

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username} {self.role}>"

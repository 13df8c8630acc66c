"""Passwords: Argon2id hashing (cost from config.py) and the password policy.

Pure functions of the current app's settings: no request, no database.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from project.errors import field_error

PASSWORD_RULES: tuple[tuple[Callable[[str], object], str], ...] = (
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
            time_cost=config["PASSWORD_HASH_TIME_COST"],
            memory_cost=config["PASSWORD_HASH_MEMORY_COST"],
            parallelism=config["PASSWORD_HASH_PARALLELISM"],
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


def dummy_verify(password: str) -> None:
    """Verify against a throwaway hash, so that an unknown account takes as long as a wrong
    password (no account enumeration by timing)."""
    dummy = current_app.extensions.get("password_dummy_hash")
    if dummy is None:
        dummy = current_app.extensions["password_dummy_hash"] = hash_password(uuid.uuid4().hex)
    verify_password(dummy, password)

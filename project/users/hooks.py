"""What the users feature needs from auth, which sits above it: auth fills these when it
registers (project/auth/__init__.py), so users never imports auth.

Sessions, emailed tokens and the verification mail are auth's; users only says when an
account changed in a way that concerns them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app


@dataclass(frozen=True)
class AccountHooks:
    # End the user's live sessions except `keep` (no commit: part of the caller's transaction).
    end_sessions: Callable[[int, str | None], object]
    # Retire the user's unused password-reset links (no commit).
    retire_reset_tokens: Callable[[int], object]
    # Retire every unused emailed link of the user: its email changed (no commit).
    retire_links: Callable[[int], object]
    # Check the account's password as a login attempt of its email and username from this IP
    # (user, password, ip): False when wrong, TooManyRequests when they are locked out.
    check_password: Callable[[Any, str, str | None], bool]
    # Count mails to these addresses caused by this account (no commit), or TooManyRequests.
    reserve_mails: Callable[[int, list[str]], object]
    # Queue a verification email (called after the commit).
    send_verification: Callable[[int], object]
    # Tell the previous address that the account's email changed (after the commit).
    notify_email_changed: Callable[[int, str], object]


def install_account_hooks(app: Flask, hooks: AccountHooks) -> None:
    app.extensions["account_hooks"] = hooks


def account_hooks() -> AccountHooks:
    return current_app.extensions["account_hooks"]

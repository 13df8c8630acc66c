"""The route guard: who is calling, and may they.

Every feature's routes use `auth_required(...)` and `current_actor()`, and hand services the
one `Actor` type. The guard reads the request (bearer token, client address); nothing below
a route does. It imports no feature: the token check that turns a bearer token into an
`Actor` is the auth feature's, installed with `install_token_check()` when auth registers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import current_app, g, has_request_context, request

from project.errors import Forbidden, Unauthorized
from project.openapi import document_auth

P = ParamSpec("P")
R = TypeVar("R")


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


ROLES = tuple(role.value for role in Role)


@dataclass(frozen=True)
class Actor:
    """The authenticated caller: what every service gets instead of a user row."""

    id: int
    role: str
    session_id: str
    # The account's columns by name, as the token check read them in this request (not the
    # token's): GET /users/me answers them, and the users feature builds its ORM object from
    # them without a second query. The guard knows no column: values are for the reader to type.
    profile: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


TokenCheck = Callable[[str], Actor]


def install_token_check(app: Any, check: TokenCheck) -> None:
    """The access-token check `auth_required` uses (auth installs it at registration)."""
    app.extensions["token_check"] = check


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Missing bearer token.", error="missing_token")
    return token.strip()


def auth_required(*roles: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Route decorator: a live access token, and one of `roles` when given (else 403).

    The caller is then `current_actor()` (role and active flag read now, not from the token).
    """

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        @wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            check: TokenCheck = current_app.extensions["token_check"]
            actor = check(bearer_token())
            g.actor = actor
            if roles and actor.role not in roles:
                raise Forbidden("You are not allowed to do this.")
            return func(*args, **kwargs)

        return document_auth(wrapper, checks_role=bool(roles))

    return decorator


def current_actor() -> Actor:
    return g.actor


def client_ip() -> str | None:
    return request.remote_addr if has_request_context() else None

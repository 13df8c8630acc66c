"""Request and response schemas of the users API (and the user object the auth API returns)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from project.guard import ROLES
from project.pagination import PaginationArgs

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,50}$"


def email_field(**kwargs) -> fields.Email:
    return fields.Email(validate=validate.Length(max=255), **kwargs)


def username_field(**kwargs) -> fields.String:
    return fields.String(
        validate=validate.Regexp(
            USERNAME_PATTERN, error="Username must be 3-50 letters, digits, '_', '.' or '-'."
        ),
        **kwargs,
    )


class UserSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    username = fields.String(required=True)
    role = fields.String(required=True, metadata={"enum": list(ROLES)})
    is_active = fields.Boolean(required=True)
    is_verified = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)


class UpdateMeSchema(Schema):
    username = username_field()
    email = email_field()
    password = fields.String(validate=validate.Length(max=1000), load_only=True)
    current_password = fields.String(validate=validate.Length(max=1000), load_only=True)


class AdminUpdateUserSchema(Schema):
    username = username_field()
    email = email_field()
    is_active = fields.Boolean()
    is_verified = fields.Boolean()


class RoleSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class UserListArgs(PaginationArgs):
    q = fields.String(validate=validate.Length(max=255))
    role = fields.String(validate=validate.OneOf(ROLES))
    is_active = fields.Boolean()

"""Request and response schemas of the users API (and the user object the auth API returns)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from confusable_homoglyphs import confusables
from marshmallow import Schema, ValidationError, fields, validate

from project.guard import ROLES
from project.pagination import PaginationArgs
from project.users.models import IDENTITY_MAX, normal_form

# "$" would let a trailing newline through, but NormalFormText strips it first (and OpenAPI
# patterns are ECMA regexes: no "\Z").
USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,50}$"


class NormalFormText(fields.String):
    """An email or username as stored: NFKC, without surrounding whitespace. Control and format
    characters inside are refused, and so is a value too long for its column once normalised
    (lower-casing can lengthen text: 'İ' becomes two characters)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = unicodedata.normalize("NFKC", super()._deserialize(value, attr, data, **kwargs)).strip()
        if any(unicodedata.category(char) in ("Cc", "Cf") for char in text):
            raise ValidationError("Must not contain control characters.")
        if max(len(text.lower()), len(normal_form(text))) > IDENTITY_MAX:
            raise ValidationError(f"Must be at most {IDENTITY_MAX} characters long once normalised.")
        return text


class NormalFormEmail(NormalFormText, fields.Email):
    """An email as NormalFormText, with a local part of one script and unquoted: `аlice@`
    (Cyrillic а among Latin letters) and `"alice"@` would pass for `alice@` (a 422; the
    look-alikes of one script, `alıce@`, meet `users.models.email_key`: a 409)."""

    def _deserialize(self, value, attr, data, **kwargs):
        email = super()._deserialize(value, attr, data, **kwargs)
        local = email.rpartition("@")[0]
        if local.startswith('"'):
            raise ValidationError("Quoted local parts are not accepted.")
        if confusables.is_mixed_script(local):
            raise ValidationError("The part before '@' must not mix scripts (look-alike letters).")
        return email


def email_field(**kwargs) -> fields.Email:
    return NormalFormEmail(validate=validate.Length(max=IDENTITY_MAX), **kwargs)


def username_field(**kwargs) -> fields.String:
    return NormalFormText(
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


# UserSchema's fields, for `user_document`: (name, is a DateTime).
_USER_FIELDS = tuple(
    (name, isinstance(field, fields.DateTime)) for name, field in UserSchema._declared_fields.items()
)


def user_document(columns: Mapping[str, Any]) -> dict[str, Any]:
    """What `UserSchema().dump()` gives for a user's columns as the database returns them
    (ints, strings, booleans, an aware datetime), without marshmallow's per-field machinery:
    GET /users/me answers it on every request. tests/users/test_me.py holds the two equal."""
    return {
        name: columns[name].isoformat() if is_datetime else columns[name]
        for name, is_datetime in _USER_FIELDS
    }


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

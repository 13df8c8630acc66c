"""Request and response schemas of the auth API."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from project.auth.tokens import MAX_TOKEN_LENGTH
from project.pagination import PaginationArgs
from project.users.schemas import email_field, username_field

Secret = validate.Length(min=1, max=1000)
Token = validate.Length(min=1, max=4096)


class RegisterSchema(Schema):
    email = email_field(required=True)
    username = username_field(required=True)
    password = fields.String(required=True, load_only=True, validate=Secret)


class LoginJsonSchema(Schema):
    email = fields.String(validate=validate.Length(min=1, max=255))
    username = fields.String(validate=validate.Length(min=1, max=255))
    password = fields.String(required=True, load_only=True, validate=Secret)

    @validates_schema
    def one_login_name(self, data, **kwargs):
        if not data.get("email") and not data.get("username"):
            raise ValidationError("Give an email or a username.", "email")


class LoginFormSchema(Schema):
    """OAuth2 password flow: `username` may be an email; the client fields are ignored."""

    username = fields.String(required=True, validate=validate.Length(min=1, max=255))
    password = fields.String(required=True, load_only=True, validate=Secret)
    grant_type = fields.String()
    scope = fields.String()
    client_id = fields.String()
    client_secret = fields.String(load_only=True)


class TokenPairSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"enum": ["bearer"]})
    expires_in = fields.Integer(required=True)


class RefreshSchema(Schema):
    refresh_token = fields.String(validate=Token)


class RefreshFormSchema(Schema):
    """The OAuth2 refresh grant (RFC 6749 section 6); the client fields are ignored."""

    grant_type = fields.String(required=True, validate=validate.Equal("refresh_token"))
    refresh_token = fields.String(required=True, validate=Token)
    scope = fields.String()
    client_id = fields.String()
    client_secret = fields.String(load_only=True)


class LogoutSchema(Schema):
    refresh_token = fields.String(validate=Token)


class EmailTokenSchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TOKEN_LENGTH))


class ForgotPasswordSchema(Schema):
    email = email_field(required=True)


class ResetPasswordSchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=MAX_TOKEN_LENGTH))
    new_password = fields.String(required=True, load_only=True, validate=Secret)


class MessageSchema(Schema):
    message = fields.String(required=True)


class SessionSchema(Schema):
    id = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True)
    user_agent = fields.String(required=True, allow_none=True)
    ip = fields.String(required=True, allow_none=True)
    current = fields.Boolean(required=True)


class SessionListArgs(PaginationArgs):
    pass

"""Auth API: registration, login, tokens, sessions, email verification, password reset."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from marshmallow import Schema, ValidationError

from project.auth import service
from project.auth.schemas import (
    EmailTokenSchema,
    ForgotPasswordSchema,
    LoginFormSchema,
    LoginJsonSchema,
    LogoutSchema,
    MessageSchema,
    RefreshFormSchema,
    RefreshSchema,
    RegisterSchema,
    ResetPasswordSchema,
    SessionListArgs,
    SessionSchema,
    TokenPairSchema,
)
from project.errors import Unprocessable, oauth2_errors
from project.extensions import limiter
from project.guard import auth_required, bearer_token, client_ip, current_actor
from project.inputs import FORM_TYPES
from project.openapi import Blueprint
from project.pagination import page_of
from project.users.schemas import UserSchema

blp = Blueprint(
    "auth",
    __name__,
    url_prefix="/api/v1/auth",
    description="Registration, login, tokens, sessions, email verification and password reset.",
)
# Per route and client address; read per request, so each app's RATE_LIMIT_AUTH applies.
limiter.limit(lambda: current_app.config["RATE_LIMIT_AUTH"])(blp)


@blp.after_request
def no_store(response):
    """Tokens and session details are never kept by a browser or a shared cache (RFC 6749 5.1)."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _load(schema: Schema, data, location: str) -> dict:
    try:
        return schema.load(data)
    except ValidationError as exc:
        # A grant_type given but not this endpoint's: RFC 6749 5.2's own code for it.
        wrong_grant = isinstance(data, dict) and data.get("grant_type") and "grant_type" in exc.messages
        error = "unsupported_grant_type" if wrong_grant else None
        raise Unprocessable("Invalid request.", errors={location: exc.messages}, error=error) from exc


def _token_request_body(json_schema: Schema, form_schema: Schema) -> dict:
    """A token endpoint's body: the OAuth2 form or JSON; {} when there is none."""
    if request.mimetype in FORM_TYPES:
        return _load(form_schema, request.form.to_dict(), "form")
    if request.content_length or request.is_json:
        return _load(json_schema, request.get_json(), "json")
    return {}


def _form_or_json_body(description: str, json_schema: type[Schema], form_schema: type[Schema]) -> dict:
    """The requestBody of a token endpoint: JSON, or the OAuth2 form (RFC 6749)."""
    return {
        # Not `required`: openapi-python-client (0.29) cannot import a module whose required body
        # has two content types. Its generated signature is the same either way.
        "required": False,
        "description": description,
        "content": {
            "application/json": {"schema": json_schema},
            "application/x-www-form-urlencoded": {"schema": form_schema},
        },
    }


def _user_agent() -> str | None:
    return request.headers.get("User-Agent")


@blp.route("/register")
class Register(MethodView):
    @blp.doc(operationId="register")
    @blp.arguments(RegisterSchema)
    @blp.response(201, UserSchema)
    @blp.errors((409, "Email or username taken."))
    def post(self, data):
        """Create an account (role user) and email a verification link."""
        return service.register(**data)


@blp.route("/login")
@oauth2_errors
class Login(MethodView):
    @blp.doc(
        operationId="login",
        requestBody=_form_or_json_body(
            "JSON `{email or username, password}`, or the OAuth2 password form "
            "(`username` may be an email); one of them is needed.",
            LoginJsonSchema,
            LoginFormSchema,
        ),
    )
    @blp.response(200, TokenPairSchema)
    @blp.errors(
        (401, "Bad credentials (the same answer for an unknown account)."),
        (403, "The account is deactivated."),
        422,
        (429, "Too many failed logins for this account from this address, or too many requests."),
    )
    def post(self):
        """Log in with JSON {email or username, password} or the OAuth2 password form."""
        data = _token_request_body(LoginJsonSchema(), LoginFormSchema())
        data = data or _load(LoginJsonSchema(), {}, "json")  # no body: say what is missing
        login_name = data.get("email") or data["username"]
        return service.login(login_name, data["password"], _user_agent(), client_ip())


@blp.route("/refresh")
@oauth2_errors
class Refresh(MethodView):
    @blp.doc(
        operationId="refreshToken",
        requestBody=_form_or_json_body(
            "JSON `{refresh_token}`, or the OAuth2 form `grant_type=refresh_token&refresh_token=...`; "
            "without a body, the refresh token is read from `Authorization: Bearer`.",
            RefreshSchema,
            RefreshFormSchema,
        ),
    )
    @blp.response(200, TokenPairSchema)
    @blp.errors((401, "Not a live refresh token (presenting a spent one ends its session)."), 422)
    def post(self):
        """Trade a refresh token (JSON, OAuth2 form or Bearer header) for a new pair; it is spent."""
        data = _token_request_body(RefreshSchema(), RefreshFormSchema())
        return service.refresh(data.get("refresh_token") or bearer_token())


@blp.route("/logout")
class Logout(MethodView):
    @blp.doc(operationId="logout")
    @auth_required()
    @blp.arguments(LogoutSchema, required=False)
    @blp.response(204)
    def post(self, data):
        """End this session (and the given refresh token's, if it is mine) at once."""
        actor = current_actor()
        service.logout(actor.id, actor.session_id, (data or {}).get("refresh_token"))


@blp.route("/verify")
class Verify(MethodView):
    @blp.doc(operationId="verifyEmail")
    @blp.arguments(EmailTokenSchema)
    @blp.response(200, UserSchema)
    @blp.errors((400, "An invalid, expired or used token (or a malformed body)."))
    def post(self, data):
        """Confirm an email address with the token from the verification email."""
        return service.verify_email(data["token"])


@blp.route("/verify/resend")
class ResendVerification(MethodView):
    @blp.doc(operationId="resendVerification")
    @auth_required()
    @blp.response(202, MessageSchema)
    def post(self):
        """Email a new verification link (nothing is sent when already verified)."""
        service.resend_verification(current_actor().id)
        return {"message": "If your email is not verified yet, a new link is on its way."}


@blp.route("/password/forgot")
class ForgotPassword(MethodView):
    @blp.doc(operationId="forgotPassword")
    @blp.arguments(ForgotPasswordSchema)
    @blp.response(202, MessageSchema)
    def post(self, data):
        """Email a password-reset link; the answer is the same whether the account exists."""
        service.forgot_password(data["email"])
        return {"message": "If an account exists for that email, a reset link has been sent."}


@blp.route("/password/reset")
class ResetPassword(MethodView):
    @blp.doc(operationId="resetPassword")
    @blp.arguments(ResetPasswordSchema)
    @blp.response(204)
    @blp.errors((400, "An invalid, expired or used token (or a malformed body)."))
    def post(self, data):
        """Set a new password with an emailed token; every session of the account ends."""
        service.reset_password(data["token"], data["new_password"])


@blp.route("/sessions")
class Sessions(MethodView):
    @blp.doc(operationId="listSessions")
    @auth_required()
    @blp.arguments(SessionListArgs, location="query")
    @blp.response(200, page_of(SessionSchema))
    def get(self, args):
        """My live sessions (one per login), newest first; `current` marks this one."""
        actor = current_actor()
        return service.list_sessions(actor.id, actor.session_id, **args)


@blp.route("/sessions/<string:session_id>")
class SessionById(MethodView):
    @blp.doc(operationId="deleteSession")
    @auth_required()
    @blp.response(204)
    @blp.errors((404, "No such session of yours."))
    def delete(self, session_id: str):
        """End one of my sessions; its tokens stop working at once."""
        service.delete_session(current_actor().id, session_id)

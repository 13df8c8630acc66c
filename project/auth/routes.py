"""Auth API: registration, login, tokens, sessions, email verification, password reset."""

from __future__ import annotations

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError

from project.auth import service
from project.auth.schemas import (
    EmailTokenSchema,
    ForgotPasswordSchema,
    LoginFormSchema,
    LoginJsonSchema,
    LogoutSchema,
    MessageSchema,
    RefreshSchema,
    RegisterSchema,
    ResetPasswordSchema,
    SessionListArgs,
    SessionSchema,
    TokenPairSchema,
)
from project.errors import Unprocessable
from project.extensions import limiter
from project.guard import auth_required, bearer_token, client_ip, current_actor
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

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


@blp.after_request
def no_store(response):
    """Tokens and session details are never kept by a browser or a shared cache (RFC 6749 5.1)."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _load(schema: Schema, data, location: str) -> dict:
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise Unprocessable("Invalid request.", errors={location: exc.messages}) from exc


def _user_agent() -> str | None:
    return request.headers.get("User-Agent")


@blp.route("/register")
class Register(MethodView):
    @blp.arguments(RegisterSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, description="Email or username taken.")
    def post(self, data):
        """Create an account (role user) and email a verification link."""
        return service.register(**data)


@blp.route("/login")
class Login(MethodView):
    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                "application/json": {"schema": LoginJsonSchema},
                "application/x-www-form-urlencoded": {"schema": LoginFormSchema},
            },
        }
    )
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, description="Bad credentials (same answer for an unknown account).")
    @blp.alt_response(403, description="Account deactivated.")
    @blp.alt_response(429, description="Too many failed logins from this address.")
    def post(self):
        """Log in with JSON {email or username, password} or the OAuth2 password form."""
        if request.mimetype in FORM_TYPES:
            data = _load(LoginFormSchema(), request.form.to_dict(), "form")
            login_name = data["username"]
        else:
            data = _load(LoginJsonSchema(), request.get_json(), "json")
            login_name = data.get("email") or data["username"]
        return service.login(login_name, data["password"], _user_agent(), client_ip())


@blp.route("/refresh")
class Refresh(MethodView):
    @blp.arguments(RefreshSchema, required=False)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, description="Not a live refresh token (a reused one ends its session).")
    def post(self, data):
        """Trade a refresh token (JSON body or Bearer header) for a new pair; it is spent."""
        token = (data or {}).get("refresh_token") or bearer_token()
        return service.refresh(token)


@blp.route("/logout")
class Logout(MethodView):
    @auth_required()
    @blp.arguments(LogoutSchema, required=False)
    @blp.response(204)
    def post(self, data):
        """End this session (and the given refresh token's, if it is mine) at once."""
        actor = current_actor()
        service.logout(actor.id, actor.session_id, (data or {}).get("refresh_token"))


@blp.route("/verify")
class Verify(MethodView):
    @blp.arguments(EmailTokenSchema)
    @blp.response(200, UserSchema)
    @blp.alt_response(400, description="Invalid, expired or used token.")
    def post(self, data):
        """Confirm an email address with the token from the verification email."""
        return service.verify_email(data["token"])


@blp.route("/verify/resend")
class ResendVerification(MethodView):
    @auth_required()
    @blp.response(202, MessageSchema)
    def post(self):
        """Email a new verification link (nothing is sent when already verified)."""
        service.resend_verification(current_actor().id)
        return {"message": "If your email is not verified yet, a new link is on its way."}


@blp.route("/password/forgot")
class ForgotPassword(MethodView):
    @blp.arguments(ForgotPasswordSchema)
    @blp.response(202, MessageSchema)
    def post(self, data):
        """Email a password-reset link; the answer is the same whether the account exists."""
        service.forgot_password(data["email"])
        return {"message": "If an account exists for that email, a reset link has been sent."}


@blp.route("/password/reset")
class ResetPassword(MethodView):
    @blp.arguments(ResetPasswordSchema)
    @blp.response(204)
    @blp.alt_response(400, description="Invalid, expired or used token.")
    def post(self, data):
        """Set a new password with an emailed token; every session of the account ends."""
        service.reset_password(data["token"], data["new_password"])


@blp.route("/sessions")
class Sessions(MethodView):
    @auth_required()
    @blp.arguments(SessionListArgs, location="query")
    @blp.response(200, page_of(SessionSchema))
    def get(self, args):
        """My live sessions (one per login), newest first; `current` marks this one."""
        actor = current_actor()
        return service.list_sessions(actor.id, actor.session_id, **args)


@blp.route("/sessions/<string:session_id>")
class SessionById(MethodView):
    @auth_required()
    @blp.response(204)
    @blp.alt_response(404, description="No such session of mine.")
    def delete(self, session_id: str):
        """End one of my sessions; its tokens stop working at once."""
        service.delete_session(current_actor().id, session_id)

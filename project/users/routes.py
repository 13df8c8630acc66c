"""Users API: the current user, and admin management of every account."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from project.guard import Role, auth_required, current_actor
from project.pagination import page_of
from project.users import service
from project.users.schemas import AdminUpdateUserSchema, RoleSchema, UpdateMeSchema, UserListArgs, UserSchema

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="User accounts and roles.")

ERRORS = {401: "Missing, invalid or revoked token.", 403: "Not allowed.", 404: "No such user."}


def _document_errors(*codes: int):
    def decorator(func):
        for code in codes:
            func = blp.alt_response(code, description=ERRORS.get(code, ""))(func)
        return func

    return decorator


@blp.route("/me")
class Me(MethodView):
    @auth_required()
    @blp.response(200, UserSchema)
    @_document_errors(401)
    def get(self):
        """The current user."""
        return service.get_user(current_actor().id)

    @auth_required()
    @blp.arguments(UpdateMeSchema)
    @blp.response(200, UserSchema)
    @_document_errors(401, 403)
    def patch(self, data):
        """Update my username, email (then unverified; a new link is sent) or password
        (needs current_password; ends every other session)."""

        return service.update_me(current_actor(), data)


@blp.route("")
class Users(MethodView):
    @auth_required(Role.ADMIN)
    @blp.arguments(UserListArgs, location="query")
    @blp.response(200, page_of(UserSchema))
    @_document_errors(401, 403)
    def get(self, args):
        """List users (admin): filters q (email/username contains), role, is_active; by id."""
        return service.list_users(**args)


@blp.route("/<dbint:user_id>")
class UserById(MethodView):
    @auth_required()
    @blp.response(200, UserSchema)
    @_document_errors(401, 404)
    def get(self, user_id: int):
        """One user (admin, or the user themself; anyone else's id is a 404)."""
        return service.get_visible_user(current_actor(), user_id)

    @auth_required(Role.ADMIN)
    @blp.arguments(AdminUpdateUserSchema)
    @blp.response(200, UserSchema)
    @_document_errors(401, 403, 404)
    def patch(self, data, user_id: int):
        """Update a user (admin): email, username, is_active, is_verified."""
        return service.admin_update_user(user_id, data)

    @auth_required(Role.ADMIN)
    @blp.response(204)
    @_document_errors(401, 403, 404)
    def delete(self, user_id: int):
        """Delete a user for good (admin); the email and username become free again."""
        service.delete_user(user_id)


@blp.route("/<dbint:user_id>/role")
class UserRole(MethodView):
    @auth_required(Role.ADMIN)
    @blp.arguments(RoleSchema)
    @blp.response(200, UserSchema)
    @_document_errors(401, 403, 404)
    def put(self, data, user_id: int):
        """Set a user's role (admin); the last active admin cannot be demoted (409)."""
        return service.set_role(user_id, data["role"])


@blp.route("/<dbint:user_id>/deactivate")
class DeactivateUser(MethodView):
    @auth_required(Role.ADMIN)
    @blp.response(200, UserSchema)
    @_document_errors(401, 403, 404)
    def post(self, user_id: int):
        """Deactivate a user (admin); every session ends at once."""
        return service.deactivate_user(user_id)


@blp.route("/<dbint:user_id>/activate")
class ActivateUser(MethodView):
    @auth_required(Role.ADMIN)
    @blp.response(200, UserSchema)
    @_document_errors(401, 403, 404)
    def post(self, user_id: int):
        """Activate a user (admin); ended sessions stay ended, the user logs in again."""
        return service.activate_user(user_id)

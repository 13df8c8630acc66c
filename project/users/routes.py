"""Users API: the current user, and admin management of every account."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from project.guard import Role, auth_required, client_ip, current_actor
from project.openapi import Blueprint
from project.pagination import page_of
from project.users import service
from project.users.schemas import (
    AdminUpdateUserSchema,
    RoleSchema,
    UpdateMeSchema,
    UserListArgs,
    UserSchema,
    user_document,
)

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="User accounts and roles.")


@blp.route("/me")
class Me(MethodView):
    @blp.doc(operationId="getMe")
    @auth_required()
    @blp.response(200, UserSchema)
    def get(self):
        """The current user."""
        # As the token check read it in this request (role and active flag included): no
        # second query, no ORM object, no marshmallow (the same document: user_document).
        return current_app.json.response(user_document(current_actor().profile))

    @blp.doc(operationId="updateMe")
    @auth_required()
    @blp.arguments(UpdateMeSchema)
    @blp.response(200, UserSchema)
    @blp.errors(
        (403, "The current password is wrong."),
        (409, "That email or username is already taken."),
        (429, "Too many wrong passwords for this account from this address, or too many emails."),
    )
    def patch(self, data):
        """Update my username, email (then unverified; a new link is sent) or password
        (needs current_password; ends every other session)."""

        return service.update_me(current_actor(), data, client_ip())


@blp.route("")
class Users(MethodView):
    @blp.doc(operationId="listUsers")
    @auth_required(Role.ADMIN)
    @blp.arguments(UserListArgs, location="query")
    @blp.response(200, page_of(UserSchema))
    def get(self, args):
        """List users (admin): filters q (email/username contains), role, is_active; by id."""
        return service.list_users(**args)


@blp.route("/<dbint:user_id>")
class UserById(MethodView):
    @blp.doc(operationId="getUser")
    @auth_required()
    @blp.response(200, UserSchema)
    @blp.errors((404, "No such user, or another user's id for a non-admin."))
    def get(self, user_id: int):
        """One user (admin, or the user themself; anyone else's id is a 404)."""
        return service.get_visible_user(current_actor(), user_id)

    @blp.doc(operationId="updateUser")
    @auth_required(Role.ADMIN)
    @blp.arguments(AdminUpdateUserSchema)
    @blp.response(200, UserSchema)
    @blp.errors((404, "No such user."), (409, "Email or username taken, or the last active admin."))
    def patch(self, data, user_id: int):
        """Update a user (admin): email, username, is_active, is_verified."""
        return service.admin_update_user(user_id, data)

    @blp.doc(operationId="deleteUser")
    @auth_required(Role.ADMIN)
    @blp.response(204)
    @blp.errors((404, "No such user."), (409, "The last active admin cannot be deleted."))
    def delete(self, user_id: int):
        """Delete a user for good (admin); the email and username become free again."""
        service.delete_user(user_id)


@blp.route("/<dbint:user_id>/role")
class UserRole(MethodView):
    @blp.doc(operationId="setUserRole")
    @auth_required(Role.ADMIN)
    @blp.arguments(RoleSchema)
    @blp.response(200, UserSchema)
    @blp.errors((404, "No such user."), (409, "The last active admin cannot be demoted."))
    def put(self, data, user_id: int):
        """Set a user's role (admin); the last active admin cannot be demoted (409)."""
        return service.set_role(user_id, data["role"])


@blp.route("/<dbint:user_id>/deactivate")
class DeactivateUser(MethodView):
    @blp.doc(operationId="deactivateUser")
    @auth_required(Role.ADMIN)
    @blp.response(200, UserSchema)
    @blp.errors((404, "No such user."), (409, "The last active admin cannot be deactivated."))
    def post(self, user_id: int):
        """Deactivate a user (admin); every session ends at once."""
        return service.deactivate_user(user_id)


@blp.route("/<dbint:user_id>/activate")
class ActivateUser(MethodView):
    @blp.doc(operationId="activateUser")
    @auth_required(Role.ADMIN)
    @blp.response(200, UserSchema)
    @blp.errors((404, "No such user."))
    def post(self, user_id: int):
        """Activate a user (admin); ended sessions stay ended, the user logs in again."""
        return service.activate_user(user_id)

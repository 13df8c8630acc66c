"""Projects, their members and their tasks (API.md "Projects and tasks")."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from project.guard import auth_required, current_actor
from project.pagination import PaginationArgs, page_of
from project.projects import service
from project.projects.schemas import (
    ProjectCreateSchema,
    ProjectSchema,
    ProjectUpdateSchema,
    TaskCreateSchema,
    TaskQuerySchema,
    TaskSchema,
    TaskUpdateSchema,
)

blp = Blueprint(
    "projects", __name__, url_prefix="/api/v1/projects", description="Projects, members and tasks."
)


_ERROR_RESPONSES = {
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    422: "UNPROCESSABLE_ENTITY",
}


def _errors(*codes: int):
    """Document the usual error answers of a route."""

    def decorator(func):
        for code in codes:
            func = blp.alt_response(code, response=_ERROR_RESPONSES[code])(func)
        return func

    return decorator


@blp.route("")
class Projects(MethodView):
    @auth_required()
    @blp.arguments(PaginationArgs, location="query")
    @blp.response(200, page_of(ProjectSchema))
    @_errors(401, 422)
    def get(self, args):
        """List the projects you own or are a member of (an admin sees all), oldest first."""
        return service.list_projects(current_actor(), args["page"], args["per_page"])

    @auth_required()
    @blp.arguments(ProjectCreateSchema)
    @blp.response(201, ProjectSchema)
    @_errors(401, 422)
    def post(self, data):
        """Create a project; you become its owner."""
        return service.create_project(current_actor(), **data)


@blp.route("/<dbint:project_id>")
class ProjectDetail(MethodView):
    @auth_required()
    @blp.response(200, ProjectSchema)
    @_errors(401, 404)
    def get(self, project_id):
        """Get a project (owner, member or admin)."""
        return service.get_project(current_actor(), project_id)

    @auth_required()
    @blp.arguments(ProjectUpdateSchema)
    @blp.response(200, ProjectSchema)
    @_errors(401, 403, 404, 422)
    def patch(self, data, project_id):
        """Update a project's name or description (owner or admin); an empty body changes nothing."""
        return service.update_project(current_actor(), project_id, data)

    @auth_required()
    @blp.response(204)
    @_errors(401, 403, 404)
    def delete(self, project_id):
        """Delete a project and its tasks (owner or admin)."""
        service.delete_project(current_actor(), project_id)


@blp.route("/<dbint:project_id>/members/<dbint:user_id>")
class ProjectMember(MethodView):
    @auth_required()
    @blp.response(200, ProjectSchema)
    @_errors(401, 403, 404, 409)
    def post(self, project_id, user_id):
        """Add a member (owner or admin); idempotent; 404 for an unknown user, 409 for the owner."""
        return service.add_member(current_actor(), project_id, user_id)

    @auth_required()
    @blp.response(200, ProjectSchema)
    @_errors(401, 403, 404, 409)
    def delete(self, project_id, user_id):
        """Remove a member (owner or admin) and unassign their tasks; 404 for a non-member."""
        return service.remove_member(current_actor(), project_id, user_id)


@blp.route("/<dbint:project_id>/tasks")
class Tasks(MethodView):
    @auth_required()
    @blp.arguments(TaskQuerySchema, location="query")
    @blp.response(200, page_of(TaskSchema))
    @_errors(401, 404, 422)
    def get(self, args, project_id):
        """List a project's tasks, oldest first; filters `status`, `assignee_id`."""
        return service.list_tasks(current_actor(), project_id, **args)

    @auth_required()
    @blp.arguments(TaskCreateSchema)
    @blp.response(201, TaskSchema)
    @_errors(401, 404, 422)
    def post(self, data, project_id):
        """Create a task (`todo`); the assignee must be the owner or a member."""
        return service.create_task(current_actor(), project_id, **data)


@blp.route("/<dbint:project_id>/tasks/<dbint:task_id>")
class TaskDetail(MethodView):
    @auth_required()
    @blp.response(200, TaskSchema)
    @_errors(401, 404)
    def get(self, project_id, task_id):
        """Get a task."""
        return service.get_task(current_actor(), project_id, task_id)

    @auth_required()
    @blp.arguments(TaskUpdateSchema)
    @blp.response(200, TaskSchema)
    @_errors(401, 404, 422)
    def patch(self, data, project_id, task_id):
        """Update a task: title, description, status, assignee_id (null unassigns), due_date."""
        return service.update_task(current_actor(), project_id, task_id, data)

    @auth_required()
    @blp.response(204)
    @_errors(401, 404)
    def delete(self, project_id, task_id):
        """Delete a task."""
        service.delete_task(current_actor(), project_id, task_id)

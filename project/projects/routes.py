"""Projects, their members and their tasks (API.md "Projects and tasks")."""

from __future__ import annotations

from flask.views import MethodView

from project.guard import auth_required, current_actor
from project.openapi import Blueprint
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


# Anyone but the owner, a member or an admin gets a 404: the project's existence is not revealed.
NO_PROJECT = (404, "No such project (or not yours to see).")
NO_TASK = (404, "No such project or task (or not yours to see).")
NOT_MANAGER = (403, "Only the project's owner or an admin may do this.")


@blp.route("")
class Projects(MethodView):
    @blp.doc(operationId="listProjects")
    @auth_required()
    @blp.arguments(PaginationArgs, location="query")
    @blp.response(200, page_of(ProjectSchema))
    def get(self, args):
        """List the projects you own or are a member of (an admin sees all), oldest first."""
        return service.list_projects(current_actor(), args["page"], args["per_page"])

    @blp.doc(operationId="createProject")
    @auth_required()
    @blp.arguments(ProjectCreateSchema)
    @blp.response(201, ProjectSchema)
    def post(self, data):
        """Create a project; you become its owner."""
        return service.create_project(current_actor(), **data)


@blp.route("/<dbint:project_id>")
class ProjectDetail(MethodView):
    @blp.doc(operationId="getProject")
    @auth_required()
    @blp.response(200, ProjectSchema)
    @blp.errors(NO_PROJECT)
    def get(self, project_id):
        """Get a project (owner, member or admin)."""
        return service.get_project(current_actor(), project_id)

    @blp.doc(operationId="updateProject")
    @auth_required()
    @blp.arguments(ProjectUpdateSchema)
    @blp.response(200, ProjectSchema)
    @blp.errors(NOT_MANAGER, NO_PROJECT)
    def patch(self, data, project_id):
        """Update a project's name or description (owner or admin); an empty body changes nothing."""
        return service.update_project(current_actor(), project_id, data)

    @blp.doc(operationId="deleteProject")
    @auth_required()
    @blp.response(204)
    @blp.errors(NOT_MANAGER, NO_PROJECT)
    def delete(self, project_id):
        """Delete a project and its tasks (owner or admin)."""
        service.delete_project(current_actor(), project_id)


@blp.route("/<dbint:project_id>/members/<dbint:user_id>")
class ProjectMember(MethodView):
    @blp.doc(operationId="addMember")
    @auth_required()
    @blp.response(200, ProjectSchema)
    @blp.errors(NOT_MANAGER, (404, "No such project or user."), (409, "The owner cannot be a member too."))
    def post(self, project_id, user_id):
        """Add a member (owner or admin); idempotent; 404 for an unknown user, 409 for the owner."""
        return service.add_member(current_actor(), project_id, user_id)

    @blp.doc(operationId="removeMember")
    @auth_required()
    @blp.response(200, ProjectSchema)
    @blp.errors(
        NOT_MANAGER, (404, "No such project, or not a member."), (409, "The owner cannot be removed.")
    )
    def delete(self, project_id, user_id):
        """Remove a member (owner or admin) and unassign their tasks; 404 for a non-member."""
        return service.remove_member(current_actor(), project_id, user_id)


@blp.route("/<dbint:project_id>/tasks")
class Tasks(MethodView):
    @blp.doc(operationId="listTasks")
    @auth_required()
    @blp.arguments(TaskQuerySchema, location="query")
    @blp.response(200, page_of(TaskSchema))
    @blp.errors(NO_PROJECT)
    def get(self, args, project_id):
        """List a project's tasks, oldest first; filters `status`, `assignee_id`."""
        return service.list_tasks(current_actor(), project_id, **args)

    @blp.doc(operationId="createTask")
    @auth_required()
    @blp.arguments(TaskCreateSchema)
    @blp.response(201, TaskSchema)
    @blp.errors(NO_PROJECT)
    def post(self, data, project_id):
        """Create a task (`status` defaults to `todo`); the assignee must be the owner or a member."""
        return service.create_task(current_actor(), project_id, **data)


@blp.route("/<dbint:project_id>/tasks/<dbint:task_id>")
class TaskDetail(MethodView):
    @blp.doc(operationId="getTask")
    @auth_required()
    @blp.response(200, TaskSchema)
    @blp.errors(NO_TASK)
    def get(self, project_id, task_id):
        """Get a task."""
        return service.get_task(current_actor(), project_id, task_id)

    @blp.doc(operationId="updateTask")
    @auth_required()
    @blp.arguments(TaskUpdateSchema)
    @blp.response(200, TaskSchema)
    @blp.errors(NO_TASK)
    def patch(self, data, project_id, task_id):
        """Update a task: title, description, status, assignee_id (null unassigns), due_date."""
        return service.update_task(current_actor(), project_id, task_id, data)

    @blp.doc(operationId="deleteTask")
    @auth_required()
    @blp.response(204)
    @blp.errors(NO_TASK)
    def delete(self, project_id, task_id):
        """Delete a task."""
        service.delete_task(current_actor(), project_id, task_id)

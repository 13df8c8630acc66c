"""Projects, members and tasks: access rules and writes.

Who may do what (the actor is the authenticated user):
- owner or admin: everything, including updating/deleting the project and its members;
- member: read the project, read and write its tasks; managing the project is a 403;
- anyone else: the project and its tasks do not exist for them (404).
An admin who is not a member therefore manages tasks too, as the owner does; but only the
owner and members can be assignees.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import exists, or_, select, update
from sqlalchemy.exc import IntegrityError

from project.errors import Conflict, Forbidden, NotFound, field_error
from project.extensions import db
from project.guard import Actor
from project.pagination import paginate
from project.projects.models import Project, Task, project_members
from project.users.models import User

# --- access ----------------------------------------------------------------------------


def _is_member(project_id: int, user_id: int) -> bool:
    return bool(
        db.session.scalar(
            select(
                exists().where(
                    project_members.c.project_id == project_id, project_members.c.user_id == user_id
                )
            )
        )
    )


def _project_for(actor: Actor, project_id: int, *, manage: bool = False, lock: bool = False) -> Project:
    """The project if `actor` may see it (and manage it, when asked); else 404 or 403.

    `lock` takes the project row for the transaction, so membership and assignees change
    one at a time (an assignee is never set while that member is being removed).
    """
    project = db.session.get(Project, project_id, with_for_update=lock or None)
    if project is None:
        raise NotFound("Project not found.")
    if actor.is_admin or project.owner_id == actor.id:
        return project
    if not _is_member(project.id, actor.id):
        raise NotFound("Project not found.")
    if manage:
        raise Forbidden("Only the project's owner or an admin may do this.")
    return project


def _task_for(actor: Actor, project_id: int, task_id: int, *, lock: bool = False) -> tuple[Project, Task]:
    project = _project_for(actor, project_id, lock=lock)
    task = db.session.get(Task, task_id)
    if task is None or task.project_id != project.id:
        raise NotFound("Task not found.")
    return project, task


def _check_assignee(project: Project, assignee_id: int | None) -> None:
    if assignee_id is None or assignee_id == project.owner_id:
        return
    if not _is_member(project.id, assignee_id):
        raise field_error("assignee_id", "The assignee must be the project's owner or a member.")


# --- projects --------------------------------------------------------------------------


def list_projects(actor: Actor, page: int, per_page: int) -> dict:
    """The projects the actor owns or is a member of (all of them for an admin), oldest first."""
    stmt = select(Project).order_by(Project.id)
    if not actor.is_admin:
        member_of = select(project_members.c.project_id).where(project_members.c.user_id == actor.id)
        stmt = stmt.where(or_(Project.owner_id == actor.id, Project.id.in_(member_of)))
    return paginate(stmt, page, per_page)


def create_project(actor: Actor, name: str, description: str | None = None) -> Project:
    project = Project(name=name, description=description or "", owner_id=actor.id)
    db.session.add(project)
    db.session.commit()
    return project


def get_project(actor: Actor, project_id: int) -> Project:
    return _project_for(actor, project_id)


def update_project(actor: Actor, project_id: int, changes: dict[str, Any]) -> Project:
    """Apply `name` and/or `description`; an empty `changes` leaves the project as it is."""
    project = _project_for(actor, project_id, manage=True)
    if "name" in changes:
        project.name = changes["name"]
    if "description" in changes:
        project.description = changes["description"] or ""
    db.session.commit()
    return project


def delete_project(actor: Actor, project_id: int) -> None:
    """Deletes the project; its tasks and memberships go with it (ON DELETE CASCADE)."""
    project = _project_for(actor, project_id, manage=True)
    db.session.delete(project)
    db.session.commit()


def add_member(actor: Actor, project_id: int, user_id: int) -> Project:
    """Idempotent for an existing member; 404 for an unknown user, 409 for the owner."""
    project = _project_for(actor, project_id, manage=True, lock=True)
    if user_id == project.owner_id:
        raise Conflict(
            "The owner is part of the project already and cannot be a member too.",
            error="membership_conflict",
        )
    if user_id in project.member_ids:
        return project
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("User not found.")
    project.members.append(user)
    try:
        db.session.commit()
    except IntegrityError:
        # A concurrent add of the same member won (or the user was deleted meanwhile).
        db.session.rollback()
        project = _project_for(actor, project_id)
        if user_id not in project.member_ids:
            raise NotFound("User not found.") from None
    return project


def remove_member(actor: Actor, project_id: int, user_id: int) -> Project:
    """Removes the member and unassigns their tasks of this project, in one transaction."""
    project = _project_for(actor, project_id, manage=True, lock=True)
    if user_id == project.owner_id:
        raise Conflict("The owner cannot be removed from the project.", error="membership_conflict")
    member = next((m for m in project.members if m.id == user_id), None)
    if member is None:
        raise NotFound("User is not a member of this project.")
    db.session.execute(
        update(Task)
        .where(Task.project_id == project.id, Task.assignee_id == user_id)
        .values(assignee_id=None)
        .execution_options(synchronize_session=False)
    )
    project.members.remove(member)
    db.session.commit()
    return project


# --- tasks -----------------------------------------------------------------------------


def list_tasks(
    actor: Actor,
    project_id: int,
    page: int,
    per_page: int,
    status: str | None = None,
    assignee_id: int | None = None,
) -> dict:
    project = _project_for(actor, project_id)
    stmt = select(Task).where(Task.project_id == project.id).order_by(Task.id)
    if status is not None:
        stmt = stmt.where(Task.status == status)
    if assignee_id is not None:
        stmt = stmt.where(Task.assignee_id == assignee_id)
    return paginate(stmt, page, per_page)


def create_task(
    actor: Actor,
    project_id: int,
    title: str,
    description: str | None = None,
    assignee_id: int | None = None,
    due_date: date | None = None,
    status: str = "todo",
) -> Task:
    """A new task, `todo` unless another status is given."""
    project = _project_for(actor, project_id, lock=assignee_id is not None)
    _check_assignee(project, assignee_id)
    task = Task(
        project_id=project.id,
        title=title,
        description=description or "",
        status=status,
        assignee_id=assignee_id,
        due_date=due_date,
    )
    db.session.add(task)
    db.session.commit()
    return task


def get_task(actor: Actor, project_id: int, task_id: int) -> Task:
    return _task_for(actor, project_id, task_id)[1]


def update_task(actor: Actor, project_id: int, task_id: int, changes: dict[str, Any]) -> Task:
    """Apply any of title, description, status (free among the three), assignee_id, due_date."""
    project, task = _task_for(actor, project_id, task_id, lock=changes.get("assignee_id") is not None)
    if "assignee_id" in changes:
        _check_assignee(project, changes["assignee_id"])
        task.assignee_id = changes["assignee_id"]
    for field in ("title", "status", "due_date"):
        if field in changes:
            setattr(task, field, changes[field])
    if "description" in changes:
        task.description = changes["description"] or ""
    db.session.commit()
    return task


def delete_task(actor: Actor, project_id: int, task_id: int) -> None:
    _project, task = _task_for(actor, project_id, task_id)
    db.session.delete(task)
    db.session.commit()

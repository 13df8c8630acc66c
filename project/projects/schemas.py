"""Request and response schemas of projects and tasks."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from project.pagination import PaginationArgs
from project.projects.models import TASK_STATUSES
from project.routing import DB_ID_MAX

NAME_MAX = 200
DESCRIPTION_MAX = 10_000


class TrimmedString(fields.String):
    """A string stripped of surrounding whitespace before validation (so "  " is blank)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


def _name(required: bool = False) -> TrimmedString:
    return TrimmedString(
        required=required,
        validate=validate.Length(min=1, max=NAME_MAX, error="Must be 1 to {max} characters long."),
    )


def _description() -> fields.String:
    # null is accepted and stored as "" (clears the description).
    return fields.String(allow_none=True, validate=validate.Length(max=DESCRIPTION_MAX))


def _user_id(*, strict: bool = True, **kwargs) -> fields.Integer:
    # Bounded like a path id, so a huge number is a 422 rather than a database overflow.
    return fields.Integer(strict=strict, validate=validate.Range(min=1, max=DB_ID_MAX), **kwargs)


class ProjectSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    owner_id = fields.Integer(required=True)
    member_ids = fields.List(
        fields.Integer(), required=True, metadata={"description": "Members, the owner excluded."}
    )
    created_at = fields.DateTime(required=True)


class ProjectCreateSchema(Schema):
    name = _name(required=True)
    description = _description()


class ProjectUpdateSchema(Schema):
    name = _name()
    description = _description()


class TaskSchema(Schema):
    id = fields.Integer(required=True)
    project_id = fields.Integer(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": list(TASK_STATUSES)})
    assignee_id = fields.Integer(required=True, allow_none=True)
    due_date = fields.Date(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)


class TaskCreateSchema(Schema):
    title = _name(required=True)
    description = _description()
    status = fields.String(load_default="todo", validate=validate.OneOf(TASK_STATUSES))
    assignee_id = _user_id(allow_none=True, metadata={"description": "The owner or a member."})
    due_date = fields.Date(allow_none=True, metadata={"description": "ISO date, 2026-12-01."})


class TaskUpdateSchema(Schema):
    title = _name()
    description = _description()
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))
    assignee_id = _user_id(
        allow_none=True, metadata={"description": "The owner or a member; null unassigns."}
    )
    due_date = fields.Date(allow_none=True)


class TaskQuerySchema(PaginationArgs):
    status = fields.String(validate=validate.OneOf(TASK_STATUSES))
    assignee_id = _user_id(strict=False)  # query strings are text

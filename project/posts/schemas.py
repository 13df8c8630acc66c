from marshmallow import Schema, fields, validate

from project.pagination import PaginationArgs


class PostSchema(Schema):
    id = fields.Integer(required=True)
    user_id = fields.Integer(required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)


class PostListArgs(PaginationArgs):
    q = fields.String(validate=validate.Length(min=1, max=200))
    user_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))

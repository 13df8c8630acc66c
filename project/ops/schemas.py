from marshmallow import INCLUDE, Schema, fields


class HealthSchema(Schema):
    """`{"status": "ok", "latency_ms": 1.2}` or `{"status": "down", "error": "..."}`."""

    class Meta:
        unknown = INCLUDE

    status = fields.String(required=True, metadata={"enum": ["ok", "down"]})
    latency_ms = fields.Float()
    error = fields.String()
    backend = fields.String()
    detail = fields.String()


class ComponentSchema(Schema):
    class Meta:
        unknown = INCLUDE

    status = fields.String(required=True, metadata={"enum": ["ok", "down", "disabled"]})
    latency_ms = fields.Float()
    error = fields.String()
    detail = fields.String()
    depth = fields.Dict(keys=fields.String(), values=fields.Integer())
    count = fields.Integer()
    alive = fields.Boolean()
    scheduled_jobs = fields.Integer()


class ComponentsSchema(Schema):
    database = fields.Nested(ComponentSchema, required=True)
    redis = fields.Nested(ComponentSchema, required=True)
    queue = fields.Nested(ComponentSchema, required=True)
    workers = fields.Nested(ComponentSchema, required=True)
    scheduler = fields.Nested(ComponentSchema, required=True)


class FullHealthSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["ok", "degraded", "down"]})
    components = fields.Nested(ComponentsSchema, required=True)

from marshmallow import INCLUDE, Schema, fields


class LivenessSchema(Schema):
    """`GET /health`: `{"status": "ok"}`, nothing else."""

    status = fields.String(required=True, metadata={"enum": ["ok"]})


class HealthSchema(Schema):
    """A dependency answered: `{"status": "ok", "latency_ms": 1.2}`."""

    class Meta:
        unknown = INCLUDE

    status = fields.String(required=True, metadata={"enum": ["ok"]})
    latency_ms = fields.Float(required=True)
    backend = fields.String(metadata={"description": "Only without REDIS_URL: `in-process`."})
    detail = fields.String(metadata={"description": "Only without REDIS_URL: why there is no Redis."})


class HealthDownSchema(Schema):
    """A dependency is down (503): `{"status": "down", "error": "..."}`."""

    class Meta:
        unknown = INCLUDE

    status = fields.String(required=True, metadata={"enum": ["down"]})
    error = fields.String(required=True)


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

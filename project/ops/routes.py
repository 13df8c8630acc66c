"""Health checks (liveness and per dependency) and Prometheus metrics.

Health bodies keep their own shape on 503 too (`{"status": "down", "error"}`), so a probe
reads one format; they and /metrics are exempt from rate limits.
"""

from flask import Response, jsonify
from flask.views import MethodView

from project import metrics
from project.openapi import Blueprint
from project.ops import health
from project.ops.schemas import FullHealthSchema, HealthDownSchema, HealthSchema, LivenessSchema

# Exempt from rate limits (ops/__init__.py), so no 429 is documented.
blp = Blueprint("ops", __name__, description="Health checks and metrics.", rate_limited=False)


def _answer(result: dict) -> dict | Response:
    """200 through the response schema; 503 as it is (its own shape, HealthDownSchema)."""
    if result["status"] != health.DOWN:
        return result
    response = jsonify(result)
    response.status_code = 503
    return response


@blp.route("/health")
class Liveness(MethodView):
    @blp.doc(operationId="getHealth")
    @blp.response(200, LivenessSchema)
    def get(self):
        """Liveness: the process answers; no dependency is touched."""
        return {"status": "ok"}


@blp.route("/health/db")
class DatabaseHealth(MethodView):
    @blp.doc(operationId="getDatabaseHealth")
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthDownSchema, description="The database is down.")
    def get(self):
        """Database: one round trip, with its latency."""
        return _answer(health.check_database())


@blp.route("/health/cache")
class CacheHealth(MethodView):
    @blp.doc(operationId="getCacheHealth")
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthDownSchema, description="Redis is down.")
    def get(self):
        """Cache: a Redis PING, with its latency (in-process cache without REDIS_URL)."""
        return _answer(health.check_cache())


@blp.route("/health/full")
class FullHealth(MethodView):
    @blp.doc(operationId="getFullHealth")
    @blp.response(200, FullHealthSchema)
    @blp.alt_response(503, schema=FullHealthSchema, description="The database or Redis is down.")
    def get(self):
        """Every component: database, Redis, queue depth, workers and the scheduler."""
        report, healthy = health.full_report()
        return report, 200 if healthy else 503


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.doc(
        operationId="getMetrics",
        responses={
            "200": {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    def get(self):
        """Prometheus metrics: requests by endpoint and status, latency, cache, queue depth."""
        health.refresh_queue_metrics()
        body, content_type = metrics.render()
        return Response(body, content_type=content_type)

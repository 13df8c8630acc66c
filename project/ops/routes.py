"""Health checks (liveness and per dependency)."""

from flask.views import MethodView
from flask_smorest import Blueprint

blp = Blueprint("ops", __name__, description="Health checks and metrics.")


@blp.route("/health")
class Liveness(MethodView):
    def get(self):
        """Liveness: the process answers; no dependency is touched."""
        return {"status": "ok"}

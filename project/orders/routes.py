from flask_smorest import Blueprint

blp = Blueprint(
    "orders",
    __name__,
    url_prefix="/api/v1/orders",
    description="Orders whose stock is reserved by background workers.",
)

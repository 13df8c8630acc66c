from flask_smorest import Blueprint

blp = Blueprint(
    "products",
    __name__,
    url_prefix="/api/v1/products",
    description="The product catalogue, synced from the upstream catalogue.",
)

from flask_smorest import Blueprint

blp = Blueprint(
    "posts",
    __name__,
    url_prefix="/api/v1/posts",
    description="Posts proxied from the upstream posts API, cached.",
)

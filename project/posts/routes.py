"""Posts proxied from the upstream posts API (POSTS_API_URL), cached."""

from flask.views import MethodView
from flask_smorest import Blueprint

from project.pagination import page_of
from project.posts import service
from project.posts.schemas import PostListArgs, PostSchema

blp = Blueprint(
    "posts",
    __name__,
    url_prefix="/api/v1/posts",
    description="Posts proxied from the upstream posts API, cached.",
)

CACHE_HEADER = {"X-Cache": {"description": "HIT, MISS or STALE (upstream down, cached copy)"}}


@blp.route("")
class Posts(MethodView):
    @blp.arguments(PostListArgs, location="query")
    @blp.response(200, page_of(PostSchema), headers=CACHE_HEADER)
    @blp.alt_response(502, description="The upstream failed and no copy is cached.")
    def get(self, args):
        """List posts, filtered by `q` (title or body) and `user_id` (cached)."""
        result = service.list_posts(**args)
        return result.value, 200, result.headers


@blp.route("/<dbint:post_id>")
class PostItem(MethodView):
    @blp.response(200, PostSchema, headers=CACHE_HEADER)
    @blp.alt_response(404, description="The upstream has no such post.")
    @blp.alt_response(502, description="The upstream failed and no copy is cached.")
    def get(self, post_id):
        """One post (cached)."""
        result = service.get_post(post_id)
        return result.value, 200, result.headers

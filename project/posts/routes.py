"""Posts proxied from the upstream posts API (POSTS_API_URL), cached."""

from flask.views import MethodView
from flask_smorest import Blueprint

from project.caching import answer, cached_response
from project.pagination import page_of
from project.posts import service
from project.posts.schemas import PostListArgs, PostSchema

blp = Blueprint(
    "posts",
    __name__,
    url_prefix="/api/v1/posts",
    description="Posts proxied from the upstream posts API, cached.",
)

CACHE_HEADER = {
    "X-Cache": {"description": "HIT, MISS or STALE (upstream down, cached copy)"},
    "ETag": {"description": "Send it back in If-None-Match: a match is a 304 with no body"},
}


def cached(kind, query=None):
    return cached_response(service.NAMESPACE, kind, "POSTS_CACHE_TTL", query, versioned=False)


@blp.route("")
class Posts(MethodView):
    @cached("list", PostListArgs)
    @blp.arguments(PostListArgs, location="query")
    @blp.response(200, page_of(PostSchema), headers=CACHE_HEADER)
    @blp.alt_response(502, description="The upstream failed and no copy is cached.")
    def get(self, args):
        """List posts, filtered by `q` (title or body) and `user_id` (cached)."""
        return answer(service.list_posts(**args))


@blp.route("/<int:post_id>")
class PostItem(MethodView):
    @cached("detail")
    @blp.response(200, PostSchema, headers=CACHE_HEADER)
    @blp.alt_response(404, description="The upstream has no such post.")
    @blp.alt_response(502, description="The upstream failed and no copy is cached.")
    def get(self, post_id):
        """One post (cached)."""
        return answer(service.get_post(post_id))

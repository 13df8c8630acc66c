"""Posts proxied from the upstream posts API (POSTS_API_URL), cached."""

from flask.views import MethodView

from project.caching import answer, cached_response
from project.openapi import Blueprint
from project.pagination import page_of
from project.posts import service
from project.posts.schemas import PostListArgs, PostSchema

blp = Blueprint(
    "posts",
    __name__,
    url_prefix="/api/v1/posts",
    description="Posts proxied from the upstream posts API, cached.",
)
UPSTREAM_DOWN = (502, "The upstream failed and no copy is cached.")


def cached(kind, query=None):
    return cached_response(service.NAMESPACE, kind, "POSTS_CACHE_TTL", query, versioned=False)


@blp.route("")
class Posts(MethodView):
    @blp.doc(operationId="listPosts")
    @cached("list", PostListArgs)
    @blp.arguments(PostListArgs, location="query")
    @blp.cacheable_response(page_of(PostSchema))
    @blp.errors(UPSTREAM_DOWN)
    def get(self, args):
        """List posts, filtered by `q` (title or body) and `user_id` (cached)."""
        return answer(service.list_posts(**args))


@blp.route("/<dbint:post_id>")
class PostItem(MethodView):
    @blp.doc(operationId="getPost")
    @cached("detail")
    @blp.cacheable_response(PostSchema)
    @blp.errors((404, "The upstream has no such post."), UPSTREAM_DOWN)
    def get(self, post_id):
        """One post (cached)."""
        return answer(service.get_post(post_id))

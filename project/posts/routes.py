"""Posts proxied from the upstream posts API (POSTS_API_URL), cached."""

from flask.views import MethodView

from project.caching import cached_route
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


# No write of ours changes the upstream's posts: the answers depend on no namespace, and are
# kept no longer than the upstream copy they came from (`CacheResult.reply()`).
NO_WRITES: tuple[str, ...] = ()


@blp.route("")
class Posts(MethodView):
    @blp.doc(operationId="listPosts")
    @cached_route(service.NAMESPACE, "list", "POSTS_CACHE_TTL", query=PostListArgs, depends_on=NO_WRITES)
    @blp.arguments(PostListArgs, location="query")
    @blp.cacheable_response(page_of(PostSchema))
    @blp.errors(UPSTREAM_DOWN)
    def get(self, args):
        """List posts, filtered by `q` (title or body) and `user_id` (cached)."""
        return service.list_posts(**args).reply()


@blp.route("/<dbint:post_id>")
class PostItem(MethodView):
    @blp.doc(operationId="getPost")
    @cached_route(service.NAMESPACE, "detail", "POSTS_CACHE_TTL", depends_on=NO_WRITES)
    @blp.cacheable_response(PostSchema)
    @blp.errors((404, "The upstream has no such post."), UPSTREAM_DOWN)
    def get(self, post_id):
        """One post (cached)."""
        return service.get_post(post_id).reply()

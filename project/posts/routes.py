"""Posts proxied from the upstream posts API (POSTS_API_URL), cached."""

from flask.views import MethodView

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


@blp.route("")
class Posts(MethodView):
    @blp.doc(operationId="listPosts")
    @blp.arguments(PostListArgs, location="query")
    @blp.cached_response(page_of(PostSchema))
    @blp.errors(UPSTREAM_DOWN)
    def get(self, args):
        """List posts, filtered by `q` (title or body) and `user_id` (cached)."""
        result = service.list_posts(**args)
        return result.value, 200, result.headers


@blp.route("/<int:post_id>")
class PostItem(MethodView):
    @blp.doc(operationId="getPost")
    @blp.cached_response(PostSchema)
    @blp.errors((404, "The upstream has no such post."), UPSTREAM_DOWN)
    def get(self, post_id):
        """One post (cached)."""
        result = service.get_post(post_id)
        return result.value, 200, result.headers

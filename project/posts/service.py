"""Posts: the upstream's answers cached for POSTS_CACHE_TTL, served stale when it fails."""

from __future__ import annotations

from flask import current_app

from project.caching import CacheResult, cached_upstream
from project.pagination import envelope
from project.posts import upstream

NAMESPACE = "posts"


def _ttl() -> int:
    return current_app.config["POSTS_CACHE_TTL"]


def list_posts(page: int, per_page: int, q: str | None = None, user_id: int | None = None) -> CacheResult:
    """Filters and pages are applied to the one cached upstream list."""
    copy = cached_upstream(NAMESPACE, "list", None, upstream.fetch_posts, _ttl())
    posts = copy.value
    if user_id is not None:
        posts = [post for post in posts if post["user_id"] == user_id]
    if q:
        term = q.lower()
        posts = [post for post in posts if term in post["title"].lower() or term in post["body"].lower()]
    start = (page - 1) * per_page
    return CacheResult(
        envelope(posts[start : start + per_page], page, per_page, len(posts)), copy.status, copy.fresh_for
    )


def get_post(post_id: int) -> CacheResult:
    return cached_upstream(NAMESPACE, "detail", {"id": post_id}, lambda: upstream.fetch_post(post_id), _ttl())

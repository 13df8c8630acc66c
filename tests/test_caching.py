"""project.caching's API on routes of its own: namespaces derived from a route's arguments,
several namespaces per route, freshness given by the view; with Redis and embedded (no Redis)."""

from __future__ import annotations

import pytest

from project import create_app
from project.caching import FRESH_FOR_HEADER, MISS, CacheResult, cached_route, invalidate
from project.extensions import db, redis_client


@pytest.fixture(params=["with_redis", "embedded"])  # ("redis" alone would mark it real-Redis only)
def cache_app(request, database_url):
    """An app with three cached test routes, on the test Redis or on none."""
    overrides = {"SQLALCHEMY_DATABASE_URI": database_url, "REVIEWS_CACHE_TTL": 60}
    if request.param == "embedded":
        overrides["REDIS_URL"] = None
    app = create_app(app_env="testing", overrides=overrides)
    calls: list[str] = []

    @cached_route(
        "reviews",
        "list",
        "REVIEWS_CACHE_TTL",
        depends_on=[lambda product_id: f"product:{product_id}:reviews"],
    )
    def reviews(product_id):
        calls.append(f"reviews {product_id}")
        return {"product_id": product_id, "calls": len(calls)}

    @cached_route("feed", "list", "REVIEWS_CACHE_TTL", depends_on=["products", "users"])
    def feed():
        calls.append("feed")
        return {"calls": len(calls)}

    @cached_route("upstream", "detail", "REVIEWS_CACHE_TTL", depends_on=())
    def short_lived():
        calls.append("short")
        return CacheResult({"calls": len(calls)}, MISS, fresh_for=0.0).reply()

    app.add_url_rule("/t/reviews/<int:product_id>", view_func=reviews)
    app.add_url_rule("/t/feed", view_func=feed)
    app.add_url_rule("/t/short", view_func=short_lived)
    yield app
    with app.app_context():
        if redis_client.enabled:
            redis_client.client.flushdb()
        db.engine.dispose()


def statuses(client, *paths: str) -> list[str]:
    return [client.get(path).headers["X-Cache"] for path in paths]


def test_a_namespace_derived_from_the_arguments_invalidates_one_product_only(cache_app):
    client = cache_app.test_client()
    paths = ("/t/reviews/1", "/t/reviews/2")
    assert statuses(client, *paths) == ["MISS", "MISS"]
    assert statuses(client, *paths) == ["HIT", "HIT"]
    with cache_app.app_context():
        invalidate("product:1:reviews")
    assert statuses(client, *paths) == ["MISS", "HIT"]


def test_a_route_depending_on_several_namespaces_is_invalidated_by_any(cache_app):
    client = cache_app.test_client()
    assert statuses(client, "/t/feed", "/t/feed") == ["MISS", "HIT"]
    for namespace in ("users", "products"):
        with cache_app.app_context():
            invalidate(namespace)
        first = client.get("/t/feed")
        assert first.headers["X-Cache"] == "MISS", namespace
        again = client.get("/t/feed")
        assert again.headers["X-Cache"] == "HIT" and again.data == first.data, namespace


def test_the_views_freshness_bounds_the_entry_and_is_never_sent(cache_app):
    client = cache_app.test_client()
    answers = [client.get("/t/short") for _ in range(2)]
    assert [a.headers["X-Cache"] for a in answers] == ["MISS", "MISS"]  # fresh for 0 s: not stored
    assert all(FRESH_FOR_HEADER not in a.headers and "ETag" in a.headers for a in answers)

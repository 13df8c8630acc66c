"""Posts proxied from a JSONPlaceholder-shaped upstream on loopback."""

from __future__ import annotations

import time

import pytest
from werkzeug import Response

API = "/api/v1/posts"
POSTS = [
    {"userId": 1 + (n - 1) // 10, "id": n, "title": f"title {n}", "body": f"body of post {n}"}
    for n in range(1, 31)
]
POSTS[4]["title"] = "A Special Title"
POSTS[20]["body"] = "something SPECIAL inside"


@pytest.fixture
def upstream(app, httpserver):
    app.config["POSTS_API_URL"] = httpserver.url_for("/")
    return httpserver


def serve_posts(httpserver, posts=POSTS):
    httpserver.expect_request("/posts").respond_with_json(posts)


def fail(httpserver, path="/posts", status=500):
    httpserver.clear()
    httpserver.expect_request(path).respond_with_response(Response("down", status=status))


def test_list_is_paginated_with_the_post_shape(client, upstream):
    serve_posts(upstream)
    body = client.get(f"{API}?per_page=7&page=2").get_json()
    assert (body["total"], body["pages"], body["page"], body["per_page"]) == (30, 5, 2, 7)
    assert body["items"][0] == {"id": 8, "user_id": 1, "title": "title 8", "body": "body of post 8"}


def test_filters_q_and_user_id(client, upstream):
    serve_posts(upstream)
    assert [p["id"] for p in client.get(f"{API}?q=special").get_json()["items"]] == [5, 21]
    assert [p["id"] for p in client.get(f"{API}?q=special&user_id=3").get_json()["items"]] == [21]
    body = client.get(f"{API}?user_id=2").get_json()
    assert body["total"] == 10 and {p["user_id"] for p in body["items"]} == {2}


def test_a_page_past_the_end_is_200_and_empty(client, upstream):
    serve_posts(upstream)
    response = client.get(f"{API}?page=99")
    assert response.status_code == 200
    assert response.get_json()["items"] == [] and response.get_json()["total"] == 30


@pytest.mark.parametrize("query", ["page=0", "per_page=101", "user_id=abc", "user_id=0"])
def test_bad_arguments_are_422(client, query):
    assert client.get(f"{API}?{query}").status_code == 422


def test_the_upstream_answer_is_cached(client, upstream):
    serve_posts(upstream)
    assert client.get(API).headers["X-Cache"] == "MISS"
    assert client.get(f"{API}?q=title&page=2").headers["X-Cache"] == "HIT"
    assert len(upstream.log) == 1


def test_detail_is_cached_and_upstream_404_is_404(client, upstream):
    upstream.expect_request("/posts/5").respond_with_json(POSTS[4])
    upstream.expect_request("/posts/404").respond_with_response(Response("{}", status=404))
    first = client.get(f"{API}/5")
    assert first.status_code == 200 and first.headers["X-Cache"] == "MISS"
    assert first.get_json() == {"id": 5, "user_id": 1, "title": "A Special Title", "body": "body of post 5"}
    assert client.get(f"{API}/5").headers["X-Cache"] == "HIT"
    missing = client.get(f"{API}/404")
    assert missing.status_code == 404 and missing.get_json()["code"] == 404


@pytest.mark.app_config(POSTS_CACHE_TTL=1)
def test_a_stale_copy_is_served_when_the_upstream_fails(client, upstream):
    serve_posts(upstream)
    assert client.get(API).headers["X-Cache"] == "MISS"
    time.sleep(1.1)
    fail(upstream)
    response = client.get(f"{API}?user_id=1")
    assert response.status_code == 200 and response.headers["X-Cache"] == "STALE"
    assert response.get_json()["total"] == 10


@pytest.mark.app_config(POSTS_CACHE_TTL=1)
def test_an_expired_copy_is_refreshed_when_the_upstream_answers(client, upstream):
    serve_posts(upstream)
    client.get(API)
    time.sleep(1.1)
    upstream.clear()
    serve_posts(upstream, POSTS[:3])
    response = client.get(API)
    assert response.headers["X-Cache"] == "MISS" and response.get_json()["total"] == 3


@pytest.mark.parametrize("status", [500, 503])
def test_no_copy_and_a_failing_upstream_is_502(client, upstream, status):
    fail(upstream, status=status)
    response = client.get(API)
    assert response.status_code == 502
    body = response.get_json()
    assert body["code"] == 502 and body["status"] == "Bad Gateway" and "posts service" in body["message"]


def test_detail_with_a_failing_upstream_is_502(client, upstream):
    fail(upstream, "/posts/1")
    assert client.get(f"{API}/1").status_code == 502


def test_invalid_json_and_unexpected_shapes_are_502(client, upstream):
    upstream.expect_request("/posts").respond_with_data("not json", content_type="application/json")
    upstream.expect_request("/posts/1").respond_with_json({"nope": True})
    assert client.get(API).status_code == 502
    assert client.get(f"{API}/1").status_code == 502


def test_unreachable_upstream_is_502(app, client):
    app.config["POSTS_API_URL"] = "http://127.0.0.1:1"
    assert client.get(API).status_code == 502


@pytest.mark.usefixtures("redis_down")
def test_redis_down_still_proxies(client, upstream):
    serve_posts(upstream)
    for _ in range(2):
        response = client.get(API)
        assert response.status_code == 200 and response.headers["X-Cache"] == "MISS"
        assert response.get_json()["total"] == 30
    assert len(upstream.log) == 2


def test_a_hit_answers_the_bytes_of_the_miss_and_a_matching_etag_is_a_304(client, upstream):
    serve_posts(upstream)
    upstream.expect_request("/posts/5").respond_with_json(POSTS[4])
    for path in (f"{API}?q=special", f"{API}/5"):
        miss, hit = client.get(path), client.get(path)
        assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("MISS", "HIT")
        assert hit.data == miss.data and hit.headers["ETag"] == miss.headers["ETag"]
        not_modified = client.get(path, headers={"If-None-Match": hit.headers["ETag"]})
        assert not_modified.status_code == 304 and not_modified.data == b""
    assert len(upstream.log) == 2


@pytest.mark.app_config(POSTS_CACHE_TTL=2)
def test_a_stored_page_lives_no_longer_than_the_upstream_copy_it_came_from(client, upstream):
    serve_posts(upstream)
    assert client.get(API).headers["X-Cache"] == "MISS"
    time.sleep(1.0)
    assert client.get(f"{API}?page=2").headers["X-Cache"] == "HIT"  # stored now, from a 1 s old copy
    time.sleep(1.2)
    upstream.clear()
    serve_posts(upstream, POSTS[:3])
    refreshed = client.get(f"{API}?page=2")
    assert refreshed.headers["X-Cache"] == "MISS" and refreshed.get_json()["total"] == 3


# --- a failing upstream opens a short circuit; each call has a deadline (issue #26, 11) ---


def test_a_failing_upstream_is_not_called_again_while_its_circuit_is_open(client, upstream, monkeypatch):
    import project.http

    fail(upstream)
    answers = [client.get(API) for _ in range(6)]
    assert [a.status_code for a in answers] == [502] * 6
    assert answers[-1].get_json()["code"] == 502
    assert len(upstream.log) == 1  # one call; the next five were answered at once
    # Per resource: another path is still asked.
    client.get(f"{API}/3")
    assert len(upstream.log) == 2
    # Once the circuit's seconds are over, the upstream is asked again (and it is back).
    now = project.http._clock()
    monkeypatch.setattr(project.http, "_clock", lambda: now + 6)
    upstream.clear()
    serve_posts(upstream)
    response = client.get(API)
    assert response.status_code == 200 and response.get_json()["total"] == 30


@pytest.mark.app_config(POSTS_CACHE_TTL=1)
def test_while_the_circuit_is_open_the_stale_copy_is_served_without_a_call(client, upstream):
    serve_posts(upstream)
    client.get(API)
    time.sleep(1.1)
    fail(upstream)
    answers = [client.get(f"{API}?page={n}") for n in range(1, 5)]
    assert [a.headers["X-Cache"] for a in answers] == ["STALE"] * 4
    assert len(upstream.log) == 1  # the failed refresh only


@pytest.mark.app_config(UPSTREAM_TIMEOUT_SECONDS=1)
def test_an_upstream_stalling_in_its_body_is_a_502_not_a_500(client, upstream):
    """The status line and a first chunk come at once, then nothing for longer than the
    deadline: the read times out inside urllib3, an upstream failure like any other."""

    def stall(request):
        def first_then_nothing():
            yield b'[{"id": 1'
            time.sleep(3)
            yield b"}]"

        return Response(first_then_nothing(), content_type="application/json")

    upstream.expect_request("/posts").respond_with_handler(stall)
    answer = client.get(API)
    assert answer.status_code == 502 and answer.get_json()["error"] == "upstream_failed"


def test_an_upstream_trickling_its_answer_is_cut_off_at_the_deadline(client, upstream):
    """Each byte comes within the read timeout, the whole takes ~4 s: the deadline (1 s) ends it."""
    import json

    body = json.dumps(POSTS[:1]).encode()

    def trickle(request):
        def slowly():
            for start in range(0, 10):
                time.sleep(0.4)
                yield body[start : start + 1]
            yield body[10:]

        return Response(slowly(), content_type="application/json")

    upstream.expect_request("/posts").respond_with_handler(trickle)
    assert client.get(API).status_code == 502

"""The versioned product cache: HIT/MISS, invalidation by every write, Redis failures."""

from __future__ import annotations

import pytest

from project import create_app
from project.extensions import db
from project.metrics import CACHE_REQUESTS

API = "/api/v1/products"


def cache_status(response) -> str:
    assert response.status_code == 200, response.get_json()
    return response.headers["X-Cache"]


@pytest.mark.parametrize("path", [API, f"{API}?category=a&sort_by=price", f"{API}/search?q=prod"])
def test_second_read_is_a_hit_with_the_same_body(client, make_product, path):
    make_product(category="A")
    first = client.get(path)
    second = client.get(path)
    assert cache_status(first) == "MISS" and cache_status(second) == "HIT"
    assert first.get_json() == second.get_json()


def test_the_key_is_the_known_query_parameters_in_any_order(client, make_product):
    make_product(category="Lamps")
    assert cache_status(client.get(f"{API}?category=lamps&page=1")) == "MISS"
    assert cache_status(client.get(f"{API}?page=1&unknown=1&category=lamps")) == "HIT"
    assert cache_status(client.get(f"{API}?category=lamps&page=1&sort_order=asc")) == "MISS"


def test_a_value_cannot_pass_for_another_parameter(client, make_product):
    make_product(category="Lamps", name="Lamp")
    # `category=lamps&name=zzz` spelt inside one value: a different request, a different entry.
    forged = client.get(f"{API}?category=lamps%26name%3Dzzz")
    assert cache_status(forged) == "MISS" and forged.get_json()["total"] == 0
    real = client.get(f"{API}?category=lamps")
    assert cache_status(real) == "MISS" and real.get_json()["total"] == 1


def test_detail_is_cached_and_a_404_is_not(client, make_product):
    product = make_product()
    assert cache_status(client.get(f"{API}/{product['id']}")) == "MISS"
    assert cache_status(client.get(f"{API}/{product['id']}")) == "HIT"
    assert client.get(f"{API}/999999").status_code == 404
    assert client.get(f"{API}/999999").status_code == 404


# Each write and the status the contract gives it.
WRITES = {
    "create": (
        lambda c, h, p: c.post(
            API, json={"sku": "N", "name": "Original 2", "price": 1, "stock": 3}, headers=h
        ),
        201,
    ),
    "patch": (lambda c, h, p: c.patch(f"{API}/{p['id']}", json={"name": "Renamed"}, headers=h), 200),
    "put": (
        lambda c, h, p: c.put(f"{API}/{p['id']}", json={"sku": "S", "name": "Put", "price": 2}, headers=h),
        200,
    ),
    "stock": (lambda c, h, p: c.patch(f"{API}/{p['id']}/stock", json={"delta": 4}, headers=h), 200),
    "delete": (lambda c, h, p: c.delete(f"{API}/{p['id']}", headers=h), 204),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_read_after_any_write_never_shows_old_data(client, admin_headers, make_product, write):
    product = make_product(name="Original", stock=1)
    urls = [API, f"{API}/search?q=original", f"{API}?in_stock=true", f"{API}/{product['id']}"]
    before = {url: client.get(url) for url in urls}
    assert all(cache_status(client.get(url)) == "HIT" for url in urls)

    call, status = WRITES[write]
    assert call(client, admin_headers, product).status_code == status

    for url in urls:
        after = client.get(url)
        if after.status_code == 404:
            assert write == "delete"
            continue
        assert after.headers["X-Cache"] == "MISS", url
        if not (write == "create" and url.endswith(str(product["id"]))):
            assert after.get_json() != before[url].get_json(), url


def test_a_sync_invalidates_the_list(client, admin_headers, upstream, run_jobs):
    assert client.get(API).get_json()["total"] == 0
    assert cache_status(client.get(API)) == "HIT"
    client.post(f"{API}/sync", headers=admin_headers)
    run_jobs(("sync",))
    after = client.get(API)
    assert after.headers["X-Cache"] == "MISS" and after.get_json()["total"] == len(upstream.products)


def test_hits_and_misses_are_counted(client, make_product):
    make_product()
    hits = CACHE_REQUESTS.labels(namespace="products", result="hit")
    misses = CACHE_REQUESTS.labels(namespace="products", result="miss")
    hits_before, misses_before = hits._value.get(), misses._value.get()
    client.get(f"{API}?name=x")
    client.get(f"{API}?name=x")
    assert hits._value.get() >= hits_before + 1 and misses._value.get() >= misses_before + 1


@pytest.mark.usefixtures("redis_down")
def test_redis_down_serves_every_read_and_write_from_the_database(client, admin_headers, make_product):
    errors = CACHE_REQUESTS.labels(namespace="products", result="error")
    before = errors._value.get()
    product = make_product(name="Lamp")
    for url in (API, f"{API}/search?q=lamp", f"{API}/{product['id']}"):
        response = client.get(url)
        assert response.status_code == 200 and response.headers["X-Cache"] == "MISS"
    patched = client.patch(f"{API}/{product['id']}", json={"name": "Desk"}, headers=admin_headers)
    assert patched.status_code == 200
    assert client.get(f"{API}/{product['id']}").get_json()["name"] == "Desk"
    assert errors._value.get() > before


def test_a_failing_cache_backend_is_logged_and_bypassed(app, client, make_product, monkeypatch, caplog):
    make_product(name="Lamp")

    def broken(*args, **kwargs):
        raise ConnectionError("cache backend down")

    for name in ("get", "set", "mget", "execute_command"):
        monkeypatch.setattr(app.extensions["redis"], name, broken)
    # A HIT's own connection (real Redis only) goes through the client's too, once it is broken.
    monkeypatch.setitem(app.extensions, "redis_hot_line", None)
    for path in (API, f"{API}?name=lamp"):
        for _ in range(2):
            response = client.get(path)
            assert response.status_code == 200 and response.get_json()["total"] == 1
            assert response.headers["X-Cache"] == "MISS"
    assert "cache get failed" in caplog.text


# --- stored bytes, ETag, 304 --------------------------------------------------------------


@pytest.mark.parametrize("path", [API, f"{API}?category=a&sort_by=price", f"{API}/search?q=prod", "detail"])
def test_a_hit_answers_the_bytes_of_the_miss_before_it(client, make_product, path):
    product = make_product(category="A")
    path = f"{API}/{product['id']}" if path == "detail" else path
    miss, hit = client.get(path), client.get(path)
    assert (miss.headers["X-Cache"], hit.headers["X-Cache"]) == ("MISS", "HIT")
    assert hit.data == miss.data and hit.headers["ETag"] == miss.headers["ETag"]
    assert hit.headers["Content-Type"] == miss.headers["Content-Type"] == "application/json"


def test_a_matching_if_none_match_is_a_304_until_a_write(client, admin_headers, make_product):
    product = make_product(name="Lamp")
    path = f"{API}/{product['id']}"
    etag = client.get(path).headers["ETag"]
    for tag in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        not_modified = client.get(path, headers={"If-None-Match": tag})
        assert not_modified.status_code == 304 and not_modified.data == b"", tag
        assert not_modified.headers["ETag"] == etag
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200

    assert client.patch(path, json={"name": "Desk"}, headers=admin_headers).status_code == 200
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.get_json()["name"] == "Desk"
    assert changed.headers["ETag"] != etag


def test_errors_are_not_cached_and_carry_no_etag(client):
    for _ in range(2):
        missing = client.get(f"{API}/999")
        assert missing.status_code == 404 and "ETag" not in missing.headers
        invalid = client.get(f"{API}?per_page=101")
        assert invalid.status_code == 422 and "ETag" not in invalid.headers


@pytest.mark.redis
def test_a_write_through_another_app_invalidates_this_ones_entries(
    client, admin_headers, make_product, database_url
):
    """Two app instances (as two gunicorn workers are): their own pools, one Redis."""
    product = make_product(name="Lamp")
    path = f"{API}/{product['id']}"
    urls = [API, path, f"{API}/search?q=lamp"]
    for url in urls:
        client.get(url)
        assert client.get(url).headers["X-Cache"] == "HIT"

    other = create_app(app_env="testing", overrides={"SQLALCHEMY_DATABASE_URI": database_url})
    try:
        patched = other.test_client().patch(path, json={"name": "Desk"}, headers=admin_headers)
        assert patched.status_code == 200
    finally:
        with other.app_context():
            db.engine.dispose()

    for url in urls:
        after = client.get(url)
        assert after.headers["X-Cache"] == "MISS", url
        assert '"Lamp"' not in after.get_data(as_text=True), url
    assert client.get(path).get_json()["name"] == "Desk"
    assert client.get(f"{API}/search?q=lamp").get_json()["total"] == 0


@pytest.mark.redis
def test_a_hit_survives_redis_closing_its_connections(app, client, make_product):
    """A HIT reads on a connection of its thread's own (outside the pool): when Redis ends it
    (a restart, `CLIENT KILL`, an idle timeout), the read is sent again on a new one, and when
    Redis is gone the request is answered from the database, never a 500."""
    import redis

    product = make_product(name="Lamp")
    path = f"{API}/{product['id']}"
    client.get(path)
    assert client.get(path).headers["X-Cache"] == "HIT"
    line = app.extensions["redis_hot_line"]
    line.connection.send_command("CLIENT", "ID")
    app.extensions["redis"].client_kill_filter(_id=line.connection.read_response())
    again = client.get(path)
    assert again.status_code == 200 and again.headers["X-Cache"] == "HIT"
    assert again.get_json()["name"] == "Lamp"

    kwargs = dict(line.pool.connection_kwargs, port=1)  # nothing listens there
    line.connection = None
    line.pool = redis.ConnectionPool(**kwargs)
    down = client.get(path)
    assert down.status_code == 200 and down.headers["X-Cache"] == "MISS"
    assert down.get_json()["name"] == "Lamp"

"""The versioned product cache: HIT/MISS, invalidation by every write, Redis failures."""

from __future__ import annotations

import pytest

from project.extensions import cache
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


def test_query_arguments_are_normalised_into_the_key(client, make_product):
    make_product(category="Lamps")
    assert cache_status(client.get(f"{API}?category=lamps&page=1")) == "MISS"
    assert cache_status(client.get(f"{API}?per_page=20&category=LAMPS&unknown=1")) == "HIT"
    assert cache_status(client.get(f"{API}?category=lamps&sort_order=asc")) == "MISS"


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


def test_a_failing_cache_backend_is_logged_and_bypassed(client, make_product, monkeypatch, caplog):
    make_product(name="Lamp")

    def broken(*args, **kwargs):
        raise ConnectionError("cache backend down")

    monkeypatch.setattr(cache, "get", broken)
    monkeypatch.setattr(cache, "set", broken)
    response = client.get(API)
    assert response.status_code == 200 and response.get_json()["total"] == 1
    assert response.headers["X-Cache"] == "MISS"
    assert "cache get failed" in caplog.text

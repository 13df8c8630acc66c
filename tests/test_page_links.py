"""Pages carry an RFC 8288 `Link` header (first/prev/next/last where they exist), keeping the
request's other query parameters; a cached page's HIT carries the same header as its MISS."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from requests.utils import parse_header_links


def links(response) -> dict[str, dict]:
    """rel -> the link's path and query (as parse_qs gives it)."""
    parsed = {}
    for link in parse_header_links(response.headers["Link"]):
        url = urlsplit(link["url"].strip())
        parsed[link["rel"]] = {"path": url.path, **parse_qs(url.query)}
    return parsed


def test_a_plain_page_links_first_prev_next_last(client, admin_headers, make_user):
    for _ in range(6):
        make_user()  # 7 users with the admin

    response = client.get("/api/v1/users?per_page=2&page=2&role=user&unknown=kept", headers=admin_headers)

    assert response.status_code == 200 and response.get_json()["pages"] == 3
    found = links(response)
    assert set(found) == {"first", "prev", "next", "last"}
    assert found["first"]["page"] == ["1"] and found["prev"]["page"] == ["1"]
    assert found["next"]["page"] == ["3"] and found["last"]["page"] == ["3"]
    for link in found.values():
        assert link["path"] == "/api/v1/users"
        assert link["per_page"] == ["2"] and link["role"] == ["user"] and link["unknown"] == ["kept"]
    follow = client.get(response.headers["Link"].split(">")[0].lstrip("<"), headers=admin_headers)
    assert follow.status_code == 200 and follow.get_json()["page"] == 1


def test_first_and_last_pages_have_no_prev_or_next(client, admin_headers):
    only = client.get("/api/v1/users?per_page=5", headers=admin_headers)
    assert set(links(only)) == {"first", "last"}
    empty = client.get("/api/v1/users?per_page=5&role=user", headers=admin_headers)
    assert empty.get_json()["pages"] == 0
    assert set(links(empty)) == {"first"}
    past_the_end = client.get("/api/v1/users?per_page=5&page=4", headers=admin_headers)
    assert links(past_the_end)["prev"]["page"] == ["1"] and "next" not in links(past_the_end)


def test_a_cached_page_has_its_links_on_a_hit(client, make_product):
    for _ in range(5):
        make_product(category="lamps")
    url = "/api/v1/products?per_page=2&page=2&category=lamps&sort_by=name"

    miss = client.get(url)
    hit = client.get(f"{url}&utm_source=mail")

    assert miss.headers["X-Cache"] == "MISS" and hit.headers["X-Cache"] == "HIT"
    assert set(links(miss)) == set(links(hit)) == {"first", "prev", "next", "last"}
    assert links(hit)["last"]["page"] == ["3"] and links(hit)["next"]["category"] == ["lamps"]
    assert links(hit)["next"]["utm_source"] == ["mail"]  # this request's parameters, not the first's
    assert "utm_source" not in miss.headers["Link"]


def test_the_openapi_document_describes_link(client):
    spec = client.get("/openapi.json").get_json()
    for path in ("/api/v1/products", "/api/v1/users", "/api/v1/orders", "/api/v1/projects"):
        assert "Link" in spec["paths"][path]["get"]["responses"]["200"]["headers"], path

"""Strict input (issue #26, findings 7 and 8): a known query parameter given twice is a 422
(and never shares a cache entry); numbers in bodies are JSON numbers; numeric query values
are ASCII decimals."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error

PRODUCTS = "/api/v1/products"


@pytest.mark.parametrize(
    "query", ["sort_by=price&sort_by=name", "sort_by=name&sort_by=price", "page=1&page=2"]
)
def test_a_known_query_parameter_given_twice_is_a_422_on_a_cached_route(client, make_product, query):
    make_product(name="b", price=1)
    response = client.get(f"{PRODUCTS}?{query}")
    body = assert_error(response, 422)
    assert list(body["errors"]["query"]) == [query.split("=")[0]]
    assert "X-Cache" not in response.headers


def test_two_orders_of_the_same_values_never_share_an_entry(client, make_product):
    make_product(name="a", price=2)
    make_product(name="b", price=1)
    assert client.get(f"{PRODUCTS}?sort_by=price&sort_by=name").status_code == 422
    assert client.get(f"{PRODUCTS}?sort_by=name&sort_by=price").status_code == 422
    by_name = client.get(f"{PRODUCTS}?sort_by=name&sort_order=asc")
    by_price = client.get(f"{PRODUCTS}?sort_order=asc&sort_by=price")
    assert [p["name"] for p in by_name.get_json()["items"]] == ["a", "b"]
    assert [p["name"] for p in by_price.get_json()["items"]] == ["b", "a"]


def test_a_parameter_given_twice_is_a_422_on_an_uncached_route(client, admin_headers):
    response = client.get("/api/v1/users?per_page=5&per_page=50", headers=admin_headers)
    assert assert_error(response, 422)["errors"]["query"] == {"per_page": ["Given more than once."]}
    # Unknown parameters are still ignored, repeated or not.
    assert client.get("/api/v1/users?x=1&x=2", headers=admin_headers).status_code == 200


@pytest.mark.parametrize("price", ["1_000", "١٢", " 5 ", "5", "5.00", True])
def test_a_number_in_a_body_must_be_a_json_number(client, admin_headers, price):
    body = {"sku": "S-1", "name": "n", "price": price}
    response = client.post(PRODUCTS, json=body, headers=admin_headers)
    assert assert_error(response, 422)["errors"]["json"] == {
        "price": ["Must be a JSON number, not a string."]
    }


def test_numbers_in_nested_bodies_are_checked_too(client, user_headers, make_product):
    product = make_product()
    items = [{"product_id": product["id"], "quantity": "2"}]
    response = client.post("/api/v1/orders", json={"items": items}, headers=user_headers)
    assert "quantity" in assert_error(response, 422)["errors"]["json"]["items"]["0"]


def test_json_numbers_still_work(client, admin_headers):
    response = client.post(PRODUCTS, json={"sku": "S-1", "name": "n", "price": 1000}, headers=admin_headers)
    assert response.status_code == 201 and response.get_json()["price"] == 1000.0
    stock = client.patch(
        f"{PRODUCTS}/{response.get_json()['id']}/stock", json={"delta": "5"}, headers=admin_headers
    )
    assert stock.status_code == 422


@pytest.mark.parametrize(
    "query",
    ["min_price=1_000", "min_price=%D9%A1%D9%A2", "min_price=%205%20", "per_page=1_0", "page=%EF%BC%92"],
)
def test_a_numeric_query_value_must_be_ascii_digits(client, query):
    response = client.get(f"{PRODUCTS}?{query}")
    name = query.split("=")[0]
    assert name in assert_error(response, 422)["errors"]["query"]


@pytest.mark.parametrize(
    "query", ["min_price=5", "min_price=5.5", "min_price=%2B5", "min_price=.5", "page=1"]
)
def test_ascii_decimals_are_fine(client, query):
    assert client.get(f"{PRODUCTS}?{query}").status_code == 200

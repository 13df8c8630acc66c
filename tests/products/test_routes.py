"""Products through HTTP: CRUD, roles, validation, filters, sorts, search, stock."""

from __future__ import annotations

import pytest

from tests.helpers import assert_error

API = "/api/v1/products"


# --- create / read / update / delete -------------------------------------------------


def test_create_returns_201_with_the_product_and_defaults(client, admin_headers):
    response = client.post(API, json={"sku": "A-1", "name": "Lamp", "price": 12.5}, headers=admin_headers)
    assert response.status_code == 201
    product = response.get_json()
    assert product["sku"] == "A-1" and product["name"] == "Lamp"
    assert product["price"] == 12.5 and product["stock"] == 0
    assert product["description"] == "" and product["category"] is None and product["external_id"] is None
    assert product["created_at"].endswith("+00:00") and product["updated_at"]
    assert client.get(f"{API}/{product['id']}").get_json() == product


def test_create_needs_a_token_and_the_admin_role(client, user_headers):
    body = {"sku": "A-1", "name": "Lamp", "price": 1}
    assert_error(client.post(API, json=body), 401)
    assert_error(client.post(API, json=body, headers=user_headers), 403)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"sku": "A", "name": "N", "price": -1}, "price"),
        ({"sku": "A", "name": "N", "price": 1, "stock": -1}, "stock"),
        ({"sku": "A", "name": "N", "price": 1.234}, "price"),
        ({"sku": "A", "name": "N", "price": "abc"}, "price"),
        ({"sku": "A", "name": "N", "price": 1, "stock": "5"}, "stock"),
        ({"sku": "A", "name": "N", "price": 1, "stock": 10**12}, "stock"),
        ({"sku": "", "name": "N", "price": 1}, "sku"),
        ({"sku": "x" * 65, "name": "N", "price": 1}, "sku"),
        ({"name": "N", "price": 1}, "sku"),
        ({"sku": "A", "price": 1}, "name"),
        ({"sku": "A", "name": "N"}, "price"),
        ({"sku": "A", "name": "N", "price": 1, "colour": "red"}, "colour"),
    ],
)
def test_create_validation_is_422_naming_the_field(client, admin_headers, body, field):
    body_json = assert_error(client.post(API, json=body, headers=admin_headers), 422)
    assert field in body_json["errors"]["json"]


def test_malformed_json_is_400(client, admin_headers):
    response = client.post(API, data="{nope", headers={**admin_headers, "Content-Type": "application/json"})
    assert_error(response, 400)


def test_taken_sku_is_409_on_create_and_update(client, admin_headers, make_product):
    first = make_product(sku="DUP")
    other = make_product(sku="OTHER")
    assert_error(client.post(API, json={"sku": "DUP", "name": "N", "price": 1}, headers=admin_headers), 409)
    assert_error(client.patch(f"{API}/{other['id']}", json={"sku": "DUP"}, headers=admin_headers), 409)
    same = client.patch(f"{API}/{first['id']}", json={"sku": "DUP"}, headers=admin_headers)
    assert same.status_code == 200


def test_get_unknown_deleted_and_huge_ids_are_404(client, admin_headers, make_product):
    product = make_product()
    assert_error(client.get(f"{API}/999999"), 404)
    assert_error(client.get(f"{API}/{2**70}"), 404)
    assert client.delete(f"{API}/{product['id']}", headers=admin_headers).status_code == 204
    assert_error(client.get(f"{API}/{product['id']}"), 404)
    assert_error(client.delete(f"{API}/{product['id']}", headers=admin_headers), 404)
    assert_error(client.patch(f"{API}/{2**70}", json={"name": "x"}, headers=admin_headers), 404)
    assert_error(client.patch(f"{API}/{2**70}/stock", json={"delta": 1}, headers=admin_headers), 404)


def test_put_replaces_and_patch_updates_only_given_fields(client, admin_headers, make_product):
    product = make_product(description="old", category="Lamps", stock=7)
    patched = client.patch(f"{API}/{product['id']}", json={"price": 99.99}, headers=admin_headers)
    assert patched.status_code == 200
    assert patched.get_json()["price"] == 99.99
    assert patched.get_json()["description"] == "old" and patched.get_json()["stock"] == 7
    put = client.put(
        f"{API}/{product['id']}", json={"sku": "NEW", "name": "New", "price": 1}, headers=admin_headers
    )
    assert put.status_code == 200
    replaced = put.get_json()
    assert (replaced["sku"], replaced["name"], replaced["price"]) == ("NEW", "New", 1.0)
    assert replaced["description"] == "" and replaced["category"] is None and replaced["stock"] == 0
    assert_error(client.put(f"{API}/{product['id']}", json={"name": "no sku"}, headers=admin_headers), 422)
    assert_error(client.patch(f"{API}/{product['id']}", json={"price": -5}, headers=admin_headers), 422)
    assert_error(client.patch(f"{API}/{product['id']}", json={"name": None}, headers=admin_headers), 422)


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_writes_on_an_item_need_admin(client, user_headers, make_product, method):
    product = make_product()
    call = getattr(client, method)
    assert_error(call(f"{API}/{product['id']}", json={"name": "x"}), 401)
    assert_error(call(f"{API}/{product['id']}", json={"name": "x"}, headers=user_headers), 403)


def test_soft_delete_keeps_the_row_out_of_lists(client, admin_headers, make_product):
    kept, gone = make_product(), make_product()
    assert client.delete(f"{API}/{gone['id']}", headers=admin_headers).status_code == 204
    page = client.get(API).get_json()
    assert [p["id"] for p in page["items"]] == [kept["id"]]
    assert page["total"] == 1
    assert client.get(f"{API}/search?q=product").get_json()["total"] == 1


# --- stock ---------------------------------------------------------------------------


def test_stock_delta_adds_and_never_goes_below_zero(client, admin_headers, user_headers, make_product):
    product = make_product(stock=5)
    url = f"{API}/{product['id']}/stock"
    response = client.patch(url, json={"delta": 3}, headers=admin_headers)
    assert response.status_code == 200 and response.get_json()["stock"] == 8
    assert client.patch(url, json={"delta": -8}, headers=admin_headers).get_json()["stock"] == 0
    assert_error(client.patch(url, json={"delta": -1}, headers=admin_headers), 409)
    assert client.get(f"{API}/{product['id']}").get_json()["stock"] == 0
    assert_error(client.patch(url, json={"delta": "1"}, headers=admin_headers), 422)
    assert_error(client.patch(url, json={}, headers=admin_headers), 422)
    assert_error(client.patch(url, json={"delta": 10**12}, headers=admin_headers), 422)
    assert_error(client.patch(url, json={"delta": 1}, headers=user_headers), 403)
    assert_error(client.patch(url, json={"delta": 1}), 401)
    assert_error(client.patch(f"{API}/999999/stock", json={"delta": 1}, headers=admin_headers), 404)


@pytest.mark.postgres
def test_concurrent_stock_deltas_never_oversell(app, client, admin_headers, make_product):
    from concurrent.futures import ThreadPoolExecutor

    product = make_product(stock=10)
    url = f"{API}/{product['id']}/stock"

    def take(_):
        return app.test_client().patch(url, json={"delta": -1}, headers=admin_headers).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(take, range(25)))
    assert codes.count(200) == 10 and codes.count(409) == 15
    assert client.get(f"{API}/{product['id']}").get_json()["stock"] == 0


# --- list: filters, sorts, pagination ------------------------------------------------


@pytest.fixture
def catalogue(make_product):
    return [
        make_product(name="Red Lamp", category="Lighting", price=30, stock=0),
        make_product(name="Blue lamp", category="lighting", price=10, stock=4),
        make_product(name="Desk", category="Furniture", price=120.5, stock=2),
        make_product(name="Chair", category="Furniture", price=45, stock=0, description="A lamp-side chair"),
    ]


def names(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [p["name"] for p in response.get_json()["items"]]


def test_list_defaults_to_newest_first_with_the_envelope(client, catalogue):
    body = client.get(API).get_json()
    assert [p["id"] for p in body["items"]] == [p["id"] for p in reversed(catalogue)]
    assert (body["page"], body["per_page"], body["total"], body["pages"]) == (1, 20, 4, 1)


def test_list_filters(client, catalogue):
    assert sorted(names(client.get(f"{API}?name=LAMP"))) == ["Blue lamp", "Red Lamp"]
    assert sorted(names(client.get(f"{API}?category=LIGHTING"))) == ["Blue lamp", "Red Lamp"]
    assert names(client.get(f"{API}?category=light")) == []
    assert sorted(names(client.get(f"{API}?min_price=30&max_price=45"))) == ["Chair", "Red Lamp"]
    assert sorted(names(client.get(f"{API}?in_stock=true"))) == ["Blue lamp", "Desk"]
    assert sorted(names(client.get(f"{API}?in_stock=false"))) == ["Chair", "Red Lamp"]
    body = client.get(f"{API}?category=furniture&in_stock=false").get_json()
    assert [p["name"] for p in body["items"]] == ["Chair"] and body["total"] == 1


def test_name_filter_treats_like_wildcards_literally(client, make_product):
    make_product(name="100% cotton")
    make_product(name="1000 cotton")
    assert names(client.get(f"{API}?name=0%25")) == ["100% cotton"]
    assert names(client.get(f"{API}?name=_")) == []


@pytest.mark.parametrize(
    "query, expected",
    [
        ("sort_by=price&sort_order=asc", ["Blue lamp", "Red Lamp", "Chair", "Desk"]),
        ("sort_by=price", ["Desk", "Chair", "Red Lamp", "Blue lamp"]),
        ("sort_by=name&sort_order=asc", ["Blue lamp", "Chair", "Desk", "Red Lamp"]),
        ("sort_by=stock&sort_order=desc", ["Blue lamp", "Desk", "Chair", "Red Lamp"]),
        ("sort_by=created_at&sort_order=asc", ["Red Lamp", "Blue lamp", "Desk", "Chair"]),
    ],
)
def test_list_sorts_with_an_id_tiebreak(client, catalogue, query, expected):
    assert names(client.get(f"{API}?{query}")) == expected


@pytest.mark.parametrize(
    "query, field",
    [
        ("sort_by=sku", "sort_by"),
        ("sort_order=up", "sort_order"),
        ("per_page=101", "per_page"),
        ("page=0", "page"),
        ("min_price=-1", "min_price"),
        ("in_stock=maybe", "in_stock"),
        ("page=abc", "page"),
    ],
)
def test_list_rejects_bad_arguments_with_422(client, query, field):
    body = assert_error(client.get(f"{API}?{query}"), 422)
    assert field in body["errors"]["query"]


def test_pagination_and_a_page_past_the_end(client, catalogue):
    first = client.get(f"{API}?per_page=3&sort_by=price&sort_order=asc").get_json()
    second = client.get(f"{API}?per_page=3&page=2&sort_by=price&sort_order=asc").get_json()
    assert [p["name"] for p in first["items"] + second["items"]] == ["Blue lamp", "Red Lamp", "Chair", "Desk"]
    assert first["pages"] == second["pages"] == 2 and first["total"] == 4
    past = client.get(f"{API}?page=9").get_json()
    assert past["items"] == [] and past["total"] == 4


def test_an_empty_list_has_zero_pages(client):
    assert client.get(API).get_json() == {
        "items": [],
        "page": 1,
        "per_page": 20,
        "total": 0,
        "pages": 0,
        "total_relation": "eq",
    }


def test_the_path_with_a_trailing_slash_answers_the_same(client, catalogue):
    assert client.get(f"{API}/").get_json()["total"] == 4


# --- search --------------------------------------------------------------------------


def test_search_matches_name_description_and_category(client, catalogue):
    assert sorted(names(client.get(f"{API}/search?q=LAMP"))) == ["Blue lamp", "Chair", "Red Lamp"]
    assert sorted(names(client.get(f"{API}/search?q=furnit"))) == ["Chair", "Desk"]
    body = client.get(f"{API}/search?q=lamp&per_page=2").get_json()
    assert body["total"] == 3 and body["pages"] == 2 and len(body["items"]) == 2
    assert client.get(f"{API}/search?q=nothing-like-this").get_json()["total"] == 0


def test_search_never_matches_across_two_fields(client, make_product):
    make_product(name="Desk", description="", category="Lamp")
    assert client.get(f"{API}/search?q=desk").get_json()["total"] == 1
    assert client.get(f"{API}/search?q=desklamp").get_json()["total"] == 0


@pytest.mark.parametrize("query", ["", "?q=", "?q=%20%20", "?q=" + "x" * 101, "?q=a%1Fb", "?q=a&per_page=0"])
def test_search_needs_a_sensible_q(client, query):
    assert_error(client.get(f"{API}/search{query}"), 422)


def test_openapi_documents_every_catalogue_route(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in (
        API,
        f"{API}/search",
        f"{API}/{{product_id}}",
        f"{API}/{{product_id}}/stock",
        f"{API}/sync",
        f"{API}/sync/status",
        "/api/v1/posts",
        "/api/v1/posts/{post_id}",
    ):
        assert path in paths, path

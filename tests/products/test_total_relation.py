"""`total_relation` (API.md, Products): counts stop after 10,000 matches, "gte" past it.

The boundary (10,000 and 10,001 matches) on the unfiltered list (the trigger-kept count), a
filtered list and a search, on whichever database the suite runs on (SQLite, PostgreSQL).
The rows go in with one bulk statement: INSERT ... SELECT generate_series on PostgreSQL (then
ANALYZE, so a search counts through the rare trigrams of its term), one executemany on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text

from project.extensions import db
from project.pagination import COUNT_LIMIT
from project.products import service
from project.products.models import Product

API = "/api/v1/products"
BULK_PG = """
INSERT INTO products (sku, name, description, price, stock, category, created_at, updated_at)
SELECT 'BULK-' || i, 'Bulk ' || i, '', 1.00, 1, :category,
       now() - make_interval(secs => i), now()
FROM generate_series(1, :n) AS i
"""


@pytest.fixture
def bulk(app):
    """`bulk(n, category)`: n live products named `Bulk <i>` in `category`, newest first by i."""
    first = iter(range(0, 10**7, 100_000))

    def add(n: int, category: str) -> None:
        with app.app_context():
            if db.engine.dialect.name == "postgresql":
                offset = next(first)
                sql = BULK_PG.replace("'BULK-' || i", f"'BULK-' || (i + {offset})")
                db.session.execute(text(sql), {"n": n, "category": category})
                # The planner's sample, as autovacuum keeps it: searches count through it
                # (project.products.search).
                db.session.execute(text("ANALYZE products"))
            else:
                now = datetime.now(UTC)
                offset = next(first)
                db.session.execute(
                    insert(Product),
                    [
                        {
                            "sku": f"BULK-{offset + i}",
                            "name": f"Bulk {i}",
                            "description": "",
                            "price": 1,
                            "stock": 1,
                            "category": category,
                            "created_at": now - timedelta(seconds=i),
                            "updated_at": now,
                        }
                        for i in range(1, n + 1)
                    ],
                )
            db.session.commit()
            service.invalidate_cache()

    return add


def get(client, path: str, **args) -> dict:
    response = client.get(path, query_string=args)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def counted(body: dict) -> tuple[int, str, int]:
    return body["total"], body["total_relation"], body["pages"]


def test_exactly_ten_thousand_matches_are_an_exact_total(client, bulk):
    bulk(COUNT_LIMIT, "Lamps")
    bulk(5, "Chairs")
    assert counted(get(client, API, category="lamps", per_page=100)) == (10_000, "eq", 100)
    assert counted(get(client, f"{API}/search", q="lamps", per_page=100)) == (10_000, "eq", 100)
    # The unfiltered list has 10,005 live products: more than the limit.
    assert counted(get(client, API, per_page=100)) == (10_000, "gte", 100)
    # The last page of the exact total is full, the one after it empty.
    last = get(client, f"{API}/search", q="lamps", per_page=100, page=100)
    assert len(last["items"]) == 100 and last["items"][-1]["name"] == f"Bulk {COUNT_LIMIT}"
    assert get(client, f"{API}/search", q="lamps", per_page=100, page=101)["items"] == []


def test_ten_thousand_and_one_matches_answer_gte_with_the_total_capped(client, bulk):
    bulk(COUNT_LIMIT + 1, "Lamps")
    for body in (
        get(client, API),
        get(client, API, category="lamps"),
        get(client, f"{API}/search", q="lamps"),
    ):
        assert counted(body) == (10_000, "gte", 500)
        assert len(body["items"]) == 20
    # A page past `pages` still shows the matches that are there (the total is a floor).
    beyond = get(client, f"{API}/search", q="lamps", per_page=100, page=101)
    assert [item["name"] for item in beyond["items"]] == [f"Bulk {COUNT_LIMIT + 1}"]


def test_small_totals_stay_exact_and_cached_answers_keep_the_relation(client, bulk):
    bulk(3, "Lamps")
    first = client.get(f"{API}/search", query_string={"q": "lamps"})
    again = client.get(f"{API}/search", query_string={"q": "lamps"})
    assert (first.headers["X-Cache"], again.headers["X-Cache"]) == ("MISS", "HIT")
    for response in (first, again):
        assert counted(response.get_json()) == (3, "eq", 1)
    assert counted(get(client, API)) == (3, "eq", 1)
    assert counted(get(client, API, category="nothing")) == (0, "eq", 0)


def test_the_page_schema_declares_total_relation(client):
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    page = schemas["ProductPage"]
    assert "total_relation" in page["required"]
    assert page["properties"]["total_relation"]["enum"] == ["eq", "gte"]
    # Lists that count exactly do not have it.
    assert "total_relation" not in schemas["OrderPage"]["properties"]


def test_a_deep_search_page_asked_first_is_the_right_slice_with_the_capped_total(client, bulk):
    bulk(COUNT_LIMIT + 1, "Lamps")
    # Asked before anything counted "lamps": one read of the first 10,001 matches serves both.
    deep = get(client, f"{API}/search", q="lamps", page=500)
    assert counted(deep) == (10_000, "gte", 500)
    assert [item["name"] for item in deep["items"]] == [f"Bulk {i}" for i in range(9_981, 10_001)]
    # The count it cached serves the next pages; page 1 is the newest.
    first = get(client, f"{API}/search", q="lamps")
    assert counted(first) == (10_000, "gte", 500) and first["items"][0]["name"] == "Bulk 1"


def test_a_search_page_across_the_counted_matches_asked_first_is_whole(client, bulk):
    bulk(COUNT_LIMIT + 40, "Lamps")
    # Rows 9,991-10,020: past the 10,001 matches the count reads, so not cut from them.
    deep = get(client, f"{API}/search", q="lamps", per_page=30, page=334)
    assert counted(deep) == (10_000, "gte", 334)
    assert [item["name"] for item in deep["items"]] == [f"Bulk {i}" for i in range(9_991, 10_021)]


def test_a_deep_page_of_an_exact_total_asked_first(client, bulk):
    bulk(6_000, "Lamps")
    deep = get(client, f"{API}/search", q="lamps", per_page=100, page=60)
    assert counted(deep) == (6_000, "eq", 60)
    assert [item["name"] for item in deep["items"]] == [f"Bulk {i}" for i in range(5_901, 6_001)]
    assert get(client, f"{API}/search", q="lamps", per_page=100, page=61)["items"] == []

"""What `q` and `name` match, and deep pages, through HTTP: the same answers on SQLite and on
PostgreSQL (where a trigram index and planner statistics serve them)."""

from __future__ import annotations

import pytest

API = "/api/v1/products"


def search(client, q: str, **args) -> dict:
    response = client.get(f"{API}/search", query_string={"q": q, **args})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def found(client, q: str) -> list[str]:
    return sorted(p["name"] for p in search(client, q, per_page=100)["items"])


def listed(client, **args) -> list[str]:
    response = client.get(API, query_string={"per_page": 100, **args})
    assert response.status_code == 200, response.get_json()
    return sorted(p["name"] for p in response.get_json()["items"])


@pytest.fixture
def shelf(make_product):
    make_product(name="Reading LAMP", description="", category=None)
    make_product(name="Stool", description="Solid OAK, hand-finished", category="Seating")
    make_product(name="Rug", description="", category="Floor Coverings")
    make_product(name="100% cotton throw", description="")
    make_product(name="1000 cotton sheets", description="")
    make_product(name="snake_case mug", description="")
    make_product(name="snakeXcase mug", description="")
    make_product(name="back\\slash print", description="")


@pytest.mark.parametrize(
    "q, expected",
    [
        ("lamp", ["Reading LAMP"]),  # name, other case
        ("ADING la", ["Reading LAMP"]),  # mid-word, across a space
        ("oak, HAND", ["Stool"]),  # description
        ("floor cov", ["Rug"]),  # category
        ("SEAT", ["Stool"]),
        ("mug", ["snakeXcase mug", "snake_case mug"]),
    ],
)
def test_search_is_a_case_insensitive_substring_of_name_description_or_category(client, shelf, q, expected):
    assert found(client, q) == expected


@pytest.mark.parametrize(
    "q, expected",
    [
        ("0%", ["100% cotton throw"]),  # not "1000 cotton": % is a percent sign, not "anything"
        ("%", ["100% cotton throw"]),
        ("e_c", ["snake_case mug"]),  # not "snakeXcase": _ is an underscore, not "any one"
        ("_", ["snake_case mug"]),
        ("k\\s", ["back\\slash print"]),  # the escape character itself
        ("\\", ["back\\slash print"]),
    ],
)
def test_search_takes_like_wildcards_and_the_escape_literally(client, shelf, q, expected):
    assert found(client, q) == expected


def test_name_filter_takes_like_wildcards_literally_too(client, shelf):
    assert listed(client, name="E_C") == ["snake_case mug"]
    assert listed(client, name="0%") == ["100% cotton throw"]
    assert listed(client, name="%") == ["100% cotton throw"]


@pytest.mark.parametrize(
    "q",
    ["äpfel", "ÄPFEL", "ÄpFeL", "émile", "ÉMILE", "журнал", "ЖУРНАЛ", "Œuvre", "œuvre"],
)
def test_search_folds_case_beyond_ascii_on_both_databases(client, make_product, q):
    make_product(name="ÄPFEL crate", description="")
    make_product(name="Chair", description="by Émile", category="Œuvres")
    make_product(name="Stand", description="", category="Журналы")
    make_product(name="Apfel", description="")  # no accent: never folded into ä
    expected = {"äpfel": ["ÄPFEL crate"], "émile": ["Chair"], "журнал": ["Stand"], "œuvre": ["Chair"]}
    assert found(client, q) == expected[q.lower()]


def test_name_and_category_filters_fold_beyond_ascii(client, make_product):
    make_product(name="ÄPFEL crate", category="Möbel")
    make_product(name="Apfel", category="Mobel")
    assert listed(client, name="äpf") == ["ÄPFEL crate"]
    assert listed(client, category="MÖBEL") == ["ÄPFEL crate"]
    assert listed(client, category="mobel") == ["Apfel"]


def test_search_counts_exactly_and_pages_cover_every_match_once(client, make_product):
    for n in range(23):
        make_product(name=f"Lamp {n:02d}", description="", category="Lighting" if n % 2 else None)
    make_product(name="Chair", description="")
    pages = [search(client, "LAMP", per_page=5, page=page) for page in range(1, 7)]
    assert {(p["total"], p["pages"]) for p in pages} == {(23, 5)}
    seen = [item["name"] for page in pages for item in page["items"]]
    assert seen == [f"Lamp {n:02d}" for n in reversed(range(23))]  # newest first, no repeats
    assert pages[-1]["items"] == []  # past the end: 200, no items, the same total


@pytest.mark.parametrize("sort", ["price", "name", "stock", "created_at"])
def test_deep_pages_of_a_filtered_list_are_slices_of_the_whole_order(client, make_product, sort):
    for n in range(30):
        make_product(
            name=f"Item {n % 7}", price=5 + n % 4, stock=n % 3, category="Kitchen" if n % 5 else "Garden"
        )
    args = {"category": "KITCHEN", "in_stock": "true", "min_price": 5, "max_price": 7, "sort_by": sort}
    whole = client.get(API, query_string={**args, "per_page": 100}).get_json()
    pages = [
        client.get(API, query_string={**args, "per_page": 3, "page": page}).get_json()
        for page in (1, 2, 3, 4, 5)
    ]
    ids = [p["id"] for p in whole["items"]]
    assert len(ids) == whole["total"] > 9 and len(set(ids)) == len(ids)
    assert [p["id"] for page in pages for p in page["items"]] == ids[:15]
    assert {page["total"] for page in pages} == {whole["total"]}


def test_a_deep_or_past_the_end_page_asked_first_has_the_exact_total(client, make_product):
    for n in range(12):
        make_product(name=f"Vase {n:02d}", description="")
    deep = search(client, "vase", per_page=5, page=3)
    assert deep["total"] == 12 and [item["name"] for item in deep["items"]] == ["Vase 01", "Vase 00"]
    past = search(client, "VASE 0", per_page=5, page=9)
    assert (past["total"], past["pages"], past["items"]) == (10, 2, [])
    assert [item["name"] for item in search(client, "vase 0", per_page=5, page=2)["items"]] == [
        f"Vase {n:02d}" for n in (4, 3, 2, 1, 0)
    ]


def test_the_rarest_trigrams_of_the_term_are_looked_up_while_they_pay():
    from project.products.search import _Sample, rare_trigrams

    rows = ["lamp category07"] * 5 + ["desk category08"] * 45 + ["rug category1" + str(n) for n in range(50)]
    values = "\n".join(rows)
    million = _Sample(values, len(rows), rows=1_000_000)
    # Every trigram of "category" is in all 100 rows, "ry0" in 50, "y07" in 5: only "y07".
    assert rare_trigrams("category07", million) == ["y07"]
    # "lam" and "amp" are both in 5% of the rows: the rarest one (the first of a tie) alone.
    assert rare_trigrams("lamp", million) == ["amp"]
    # Trigrams the sample lacks (taken as half a row each: 0.5% of a million rows) narrow the
    # candidates while more than 200 are left: 5,000 -> 25 at a million rows, so two; one at
    # ten thousand (50 candidates already); three at a hundred million.
    assert rare_trigrams("zzqx9 zzq", million) == ["qx9", "zqx"]
    assert rare_trigrams("zzqx9 zzq", _Sample(values, len(rows), rows=10_000)) == ["qx9"]
    assert rare_trigrams("qwxzvk", _Sample(values, len(rows), rows=100_000_000)) == ["qwx", "wxz", "xzv"]
    # Fewer than three letters or digits in a row, or none but other characters: no lookup.
    assert rare_trigrams("ab c-d", million) == [] and rare_trigrams("%%%", million) == []


@pytest.mark.postgres
def test_matches_found_through_the_rare_trigrams_are_the_rows_holding_the_whole_term(
    app, client, make_product
):
    from sqlalchemy import text

    from project.extensions import db
    from project.products import search as product_search

    for n in range(12):
        make_product(name=f"Shade {n:02d}", description="", category="category07")
    for n in range(6):  # "y07" and "category" both, never "category07"
        make_product(name=f"Lamp y07 {n}", description="", category="category")
    for n in range(10):  # "ry0" in 22 rows, "y07" in 18: the rarest
        make_product(name=f"Desk {n}", description="", category="category08")
    for n in range(20):  # neither: "y07" is in 18 rows of 48, under half
        make_product(name=f"Rug {n}", description="", category="floor")
    with app.app_context():
        db.session.execute(text("ANALYZE products"))
        db.session.commit()
        app.extensions.pop("products_search", None)  # the planner's sample, read again
        sample = product_search._sample()
        assert sample is not None and sample.size == 48
        # The index looks up "y07" alone: 18 candidates, 12 of them hold the whole term.
        assert product_search.rare_trigrams("category07", sample) == ["y07"]
        condition = str(product_search.matches("category07", "postgresql").compile(db.engine))
        assert "LIKE" in condition and "strpos" in condition
        # Every trigram of "category" is in 28 rows of 48: no lookup, the test alone.
        condition = str(product_search.matches("category", "postgresql").compile(db.engine))
        assert "LIKE" not in condition and "strpos" in condition
    body = search(client, "CATEGORY07", per_page=5)
    assert (body["total"], body["total_relation"], body["pages"]) == (12, "eq", 3)
    assert [item["name"] for item in body["items"]] == [f"Shade {n:02d}" for n in range(11, 6, -1)]
    assert found(client, "y07 1") == ["Lamp y07 1"]
    assert search(client, "category", per_page=100)["total"] == 28
    assert search(client, "category0", per_page=100)["total"] == 22

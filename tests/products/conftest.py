"""Catalogue fixtures: products made through the API and an upstream catalogue on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from werkzeug import Request, Response

FIXTURES = Path(__file__).parent / "fixtures"
API = "/api/v1/products"


class Upstream:
    """A DummyJSON-shaped catalogue served by pytest-httpserver; `fail_at_skip` makes
    the page at that offset answer 500."""

    def __init__(self, httpserver):
        self.products = json.loads((FIXTURES / "catalogue.json").read_text())["products"]
        self.fail_at_skip: int | None = None
        self.requests: list[dict] = []
        httpserver.expect_request("/products").respond_with_handler(self.handle)
        self.url = httpserver.url_for("/products")

    def handle(self, request: Request) -> Response:
        limit, skip = int(request.args.get("limit", 30)), int(request.args.get("skip", 0))
        self.requests.append({"limit": limit, "skip": skip})
        if self.fail_at_skip is not None and skip >= self.fail_at_skip:
            return Response("boom", status=500)
        body = {
            "products": self.products[skip : skip + limit],
            "total": len(self.products),
            "skip": skip,
            "limit": limit,
        }
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def upstream(app, httpserver):
    catalogue = Upstream(httpserver)
    app.config["PRODUCTS_SYNC_URL"] = catalogue.url
    app.config["PRODUCTS_SYNC_PAGE_SIZE"] = 5
    return catalogue

"""Clients of upstream catalogues. A provider pages through the upstream and turns its rows
into `UpstreamProduct`s; another provider is one class here plus PRODUCTS_SYNC_PROVIDER."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import requests

from project.errors import UpstreamError
from project.http import shared_session
from project.products.schemas import MAX_STOCK

MAX_PRICE = Decimal("100000000")


@dataclass(frozen=True)
class UpstreamProduct:
    external_id: str
    sku: str
    name: str
    description: str
    price: Decimal
    stock: int
    category: str | None


@dataclass(frozen=True)
class UpstreamPage:
    rows: list[dict[str, Any]]
    total: int


class CatalogueProvider(Protocol):
    def pages(self) -> Iterator[UpstreamPage]: ...

    def parse(self, row: dict[str, Any]) -> UpstreamProduct:
        """Raise ValueError for a row that cannot become a product."""
        ...


def _optional_text(value: Any, field: str, max_length: int) -> str | None:
    """The text, or None when it is absent or blank."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field} is not a string")
    if len(value) > max_length:
        raise ValueError(f"{field} is longer than {max_length} characters")
    return value


def _text(value: Any, field: str, max_length: int) -> str:
    text = _optional_text(value, field, max_length)
    if text is None:
        raise ValueError(f"{field} is missing")
    return text


class DummyJSONProvider:
    """`GET {url}?limit=N&skip=M` -> {"products": [...], "total", "skip", "limit"}."""

    def __init__(self, url: str, timeout: float, page_size: int = 100):
        self.url = url
        self.timeout = timeout
        self.page_size = page_size
        self.session = shared_session("products-sync")

    def _get(self, skip: int) -> dict[str, Any]:
        try:
            response = self.session.get(
                self.url, params={"limit": self.page_size, "skip": skip}, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise UpstreamError(f"Upstream catalogue unreachable: {exc.__class__.__name__}") from exc
        if response.status_code != 200:
            raise UpstreamError(f"Upstream catalogue answered {response.status_code} at skip={skip}")
        try:
            body = response.json()
        except ValueError as exc:
            raise UpstreamError(f"Upstream catalogue sent invalid JSON at skip={skip}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("products"), list):
            raise UpstreamError(f"Upstream catalogue sent an unexpected body at skip={skip}")
        return body

    def pages(self) -> Iterator[UpstreamPage]:
        skip = 0
        while True:
            body = self._get(skip)
            rows = [row for row in body["products"] if isinstance(row, dict)]
            reported = body.get("total")
            total = reported if isinstance(reported, int) else skip + len(rows)
            yield UpstreamPage(rows, total)
            skip += len(body["products"])
            if not body["products"] or skip >= total:
                return

    def parse(self, row: dict[str, Any]) -> UpstreamProduct:
        upstream_id = row.get("id")
        if isinstance(upstream_id, bool) or not isinstance(upstream_id, (int, str)) or str(upstream_id) == "":
            raise ValueError("id is missing")
        external_id = str(upstream_id)
        if len(external_id) > 60:
            raise ValueError("id is too long")
        price_value = row.get("price")
        if isinstance(price_value, bool) or not isinstance(price_value, (int, float, str)):
            raise ValueError("price is not a number")
        try:
            price = Decimal(str(price_value)).quantize(Decimal("0.01"))
        except InvalidOperation as exc:
            raise ValueError("price is not a number") from exc
        if not price.is_finite() or price < 0 or price >= MAX_PRICE:
            raise ValueError("price is out of range")
        stock = row.get("stock", 0)
        if isinstance(stock, bool) or not isinstance(stock, int) or not 0 <= stock <= MAX_STOCK:
            raise ValueError("stock is not a whole number in range")
        return UpstreamProduct(
            external_id=external_id,
            sku=_optional_text(row.get("sku"), "sku", 64) or f"EXT-{external_id}",
            name=_text(row.get("title"), "title", 255),
            description=_optional_text(row.get("description"), "description", 10_000) or "",
            price=price,
            stock=stock,
            category=_optional_text(row.get("category"), "category", 100),
        )


PROVIDERS: dict[str, type] = {"dummyjson": DummyJSONProvider}


def get_provider(config: dict[str, Any]) -> CatalogueProvider:
    name = config["PRODUCTS_SYNC_PROVIDER"].lower()
    if name not in PROVIDERS:
        raise RuntimeError(f"PRODUCTS_SYNC_PROVIDER must be one of {sorted(PROVIDERS)}, not {name!r}")
    return PROVIDERS[name](
        config["PRODUCTS_SYNC_URL"],
        timeout=config["UPSTREAM_TIMEOUT_SECONDS"],
        page_size=config["PRODUCTS_SYNC_PAGE_SIZE"],
    )

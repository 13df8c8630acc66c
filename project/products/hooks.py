"""What the catalogue needs from features above it, filled when those register.

The sync writes upstream stock less the units that reserved orders hold (they were already
taken off local stock); orders knows those units, products may not import orders.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app
from sqlalchemy import ColumnElement, literal

# Given the products.id column, a correlated SQL expression: units held for that product.
HeldUnits = Callable[[ColumnElement[int]], ColumnElement[int]]


def install_held_units(app: Flask, held_units: HeldUnits) -> None:
    app.extensions["products_held_units"] = held_units


def held_units(product_id: ColumnElement[int]) -> ColumnElement[int]:
    """Units held elsewhere for the product (0 when no feature holds any)."""
    provider: HeldUnits | None = current_app.extensions.get("products_held_units")
    return provider(product_id) if provider is not None else literal(0)

"""Orders: placed pending, reserved by a worker, then paid or cancelled."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Tell the catalogue sync how many units reserved orders hold."""
    from project.orders.state_machine import reserved_units
    from project.products.hooks import install_held_units

    install_held_units(app, reserved_units)

"""project/products/stock.py: what other features may do to products, inside their own
transaction (nothing here commits)."""

from __future__ import annotations

from decimal import Decimal

from project.extensions import db
from project.products import stock
from project.products.models import Product


def test_live_prices_leave_out_unknown_and_deleted_products(app, make_product):
    live = make_product(price="2.50")["id"]
    gone = make_product(deleted=True)["id"]
    with app.app_context():
        assert stock.live_prices([live, gone, 999_999]) == {live: Decimal("2.50")}
        with db.engine.begin() as connection:  # a caller's own Core transaction (orders' create)
            assert stock.live_prices([live, gone], connection) == {live: Decimal("2.50")}


def test_lock_live_reads_live_products_in_id_order(app, make_product):
    a, b = make_product(name="A", stock=3)["id"], make_product(name="B", stock=0)["id"]
    gone = make_product(deleted=True)["id"]
    with app.app_context():
        locked = stock.lock_live([b, gone, a])
        assert list(locked) == [a, b]
        assert locked[a] == stock.OnHand("A", 3) and locked[b].stock == 0
        db.session.rollback()


def test_take_is_all_or_none_and_never_below_zero(app, make_product):
    a, b = make_product(stock=5)["id"], make_product(stock=1)["id"]
    with app.app_context():
        stock.lock_live([a, b])
        assert stock.take({a: 2, b: 2}) is False  # b has 1: the caller rolls back
        db.session.rollback()
        stock.lock_live([a, b])
        assert stock.take({a: 5, b: 1}) is True
        assert stock.take({}) is True
        db.session.commit()
        assert [db.session.get(Product, pid).stock for pid in (a, b)] == [0, 0]


def test_take_refuses_a_deleted_product_and_give_back_restores_any(app, make_product):
    live, gone = make_product(stock=4)["id"], make_product(stock=4, deleted=True)["id"]
    with app.app_context():
        assert stock.take({gone: 1}) is False
        db.session.rollback()
        stock.give_back({live: 3, gone: 2})
        db.session.commit()
        db.session.expire_all()
        assert [db.session.get(Product, pid).stock for pid in (live, gone)] == [7, 6]


def test_nothing_is_committed_by_stock(app, make_product):
    pid = make_product(stock=4)["id"]
    with app.app_context():
        stock.lock_live([pid])
        assert stock.take({pid: 4})
        stock.give_back({pid: 1})
        db.session.rollback()
        assert db.session.get(Product, pid).stock == 4

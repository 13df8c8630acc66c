"""A dependency failing at the end of a request (the session's rollback on a connection the
database dropped) never turns an answer into gunicorn's HTML 500, and never hides a committed
order from a client that retries with the same Idempotency-Key."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from project.orders.models import Order
from tests.helpers import assert_error

ORDERS = "/api/v1/orders"


def dropped_connection() -> OperationalError:
    return OperationalError("ROLLBACK", {}, Exception("server closed the connection unexpectedly"))


@pytest.fixture
def rollback_fails_once(monkeypatch):
    """The next `Session.close()` (the teardown's) raises as on a connection PostgreSQL killed."""
    armed = {"on": False}
    close = Session.close

    def failing_close(self):
        if armed["on"]:
            armed["on"] = False
            close(self)  # the work is committed; the connection then "dies"
            raise dropped_connection()
        return close(self)

    monkeypatch.setattr(Session, "close", failing_close)
    return armed


def test_a_failed_teardown_rollback_keeps_the_views_answer(
    app, client, make_product, user_headers, rollback_fails_once
):
    pid = make_product()["id"]
    body = {"items": [{"product_id": pid, "quantity": 1}]}
    headers = {**user_headers, "Idempotency-Key": "k-teardown"}  # the key's lookup uses the session
    rollback_fails_once["on"] = True
    response = client.post(ORDERS, json=body, headers=headers)
    assert not rollback_fails_once["on"], "the request's session was never closed"
    assert response.status_code == 202, response.get_data(as_text=True)[:300]
    assert response.get_json()["status"] == "pending"
    # The next requests get a working session, and the retry finds the stored order.
    again = client.post(ORDERS, json=body, headers=headers)
    assert again.status_code == 202 and again.get_json()["id"] == response.get_json()["id"]
    with app.app_context():
        assert Order.query.count() == 1


@pytest.fixture
def teardown_raises(app):
    """`teardown_raises(exc)`: the next request's app-context teardown raises `exc` (once)."""
    pending: list[BaseException] = []

    def explode(_exc):
        if pending:
            raise pending.pop()

    # Teardowns run last-registered first: this one runs after the session's, as a failing
    # session teardown would, so the session is still returned.
    app.teardown_appcontext_funcs.insert(0, explode)
    return pending.append


def test_an_error_escaping_flask_is_a_503_in_the_error_shape(client, teardown_raises):
    teardown_raises(dropped_connection())
    response = client.get("/health")
    body = assert_error(response, 503)
    assert body["error"] == "service_unavailable"
    assert response.headers["Retry-After"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"  # the observer still saw it


def test_a_bug_escaping_flask_is_a_500_in_the_error_shape(client, teardown_raises):
    teardown_raises(ValueError("a bug in a teardown"))
    body = assert_error(client.get("/health"), 500)
    assert body["error"] == "internal_error"
    assert "a bug" not in body["message"]


def test_a_503_after_the_commit_hides_nothing_from_a_retry_with_the_same_key(
    app, client, make_product, user_headers, teardown_raises
):
    pid = make_product()["id"]
    body = {"items": [{"product_id": pid, "quantity": 2}]}
    headers = {**user_headers, "Idempotency-Key": "retry-me"}
    teardown_raises(dropped_connection())
    first = client.post(ORDERS, json=body, headers=headers)
    assert_error(first, 503)
    with app.app_context():
        assert Order.query.count() == 1  # committed before the failure

    again = client.post(ORDERS, json=body, headers=headers)
    assert again.status_code == 202, again.get_data(as_text=True)[:300]
    with app.app_context():
        stored = Order.query.one()
    assert again.get_json()["id"] == stored.id
    assert again.get_json()["items"][0]["quantity"] == 2

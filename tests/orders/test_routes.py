"""Orders through HTTP: create, validation, idempotency, visibility, every transition.

Runs on SQLite + fakeredis (jobs run by an in-process RQ worker, `run_jobs`) and on
PostgreSQL + Redis alike.
"""

from __future__ import annotations

import pytest

from project import jobs as queue_jobs
from project.orders import jobs as order_jobs
from project.orders import service, state_machine
from project.orders.models import Order, OrderItem
from project.products import stock
from tests.helpers import assert_error, wait_for

ORDERS = "/api/v1/orders"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_post_stores_a_pending_order_with_captured_prices(place, make_product, user, user_headers):
    a, b = make_product(stock=5, price="2.50")["id"], make_product(stock=5, price="10.00")["id"]
    response = place(user_headers, [(a, 2), (b, 1)])
    assert response.status_code == 202
    order = response.get_json()
    assert order["status"] == "pending"
    assert order["user_id"] == user["id"]
    assert order["items"] == [
        {"product_id": a, "quantity": 2, "unit_price": 2.5},
        {"product_id": b, "quantity": 1, "unit_price": 10.0},
    ]
    assert order["total"] == 15.0
    assert order["failure_reason"] is None
    assert order["created_at"].endswith("+00:00")


def test_the_202_is_what_a_read_of_the_stored_order_answers(client, place, make_product, user_headers):
    a, b = make_product(stock=5, price="0.10")["id"], make_product(stock=5, price="19.99")["id"]
    created = place(user_headers, [(b, 3), (a, 1)]).get_json()  # built from what was written
    assert client.get(f"{ORDERS}/{created['id']}", headers=user_headers).get_json() == created


def test_worker_reserves_all_items(client, place, make_product, stock_of, user_headers, run_jobs):
    a, b = make_product(stock=5)["id"], make_product(stock=3)["id"]
    order = place(user_headers, [(a, 2), (b, 3)]).get_json()
    run_jobs(("stock",))
    body = client.get(f"{ORDERS}/{order['id']}", headers=user_headers).get_json()
    assert body["status"] == "reserved"
    assert (stock_of(a), stock_of(b)) == (3, 0)


def test_shortfall_fails_the_whole_order_and_names_the_product(
    client, place, make_product, stock_of, user_headers, run_jobs
):
    a, b = make_product(stock=5)["id"], make_product(stock=1, name="Scarce")["id"]
    order = place(user_headers, [(a, 2), (b, 2)]).get_json()
    run_jobs(("stock",))
    body = client.get(f"{ORDERS}/{order['id']}", headers=user_headers).get_json()
    assert body["status"] == "failed"
    assert f"product {b}" in body["failure_reason"] and "Scarce" in body["failure_reason"]
    assert (stock_of(a), stock_of(b)) == (5, 1)  # none reserved


def test_product_deleted_before_reservation_fails_the_order(
    app, client, place, make_product, user_headers, run_jobs
):
    from project.database import utcnow
    from project.extensions import db
    from project.products.models import Product

    pid = make_product(stock=5)["id"]
    order = place(user_headers, [(pid, 1)]).get_json()
    with app.app_context():
        db.session.get(Product, pid).deleted_at = utcnow()
        db.session.commit()
    run_jobs(("stock",))
    body = client.get(f"{ORDERS}/{order['id']}", headers=user_headers).get_json()
    assert body["status"] == "failed"
    assert "no longer available" in body["failure_reason"]


@pytest.mark.app_config(REDIS_URL=None)
def test_without_redis_the_202_says_pending_and_the_reservation_follows(
    client, place, make_product, stock_of, user_headers
):
    """The embedded default answers as a worker setup does: pending, then reserved in this
    process once the answer is made."""
    pid = make_product(stock=2)["id"]
    response = place(user_headers, [(pid, 2)])
    assert response.status_code == 202
    assert response.get_json()["status"] == "pending"

    url = f"{ORDERS}/{response.get_json()['id']}"
    wait_for(
        lambda: client.get(url, headers=user_headers).get_json()["status"] == "reserved",
        30,
        "the reservation",
    )
    assert stock_of(pid) == 0


def test_every_route_needs_a_token(client):
    assert client.get(ORDERS).status_code == 401
    assert client.post(ORDERS, json={"items": []}).status_code == 401
    assert client.get(f"{ORDERS}/1").status_code == 401
    assert client.post(f"{ORDERS}/1/pay").status_code == 401
    assert client.post(f"{ORDERS}/1/cancel").status_code == 401
    bad = {"Authorization": "Bearer nonsense"}
    assert client.get(ORDERS, headers=bad).get_json()["code"] == 401


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"items": []},
        {"items": "x"},
        {"items": [{"product_id": "P", "quantity": 0}]},
        {"items": [{"product_id": "P", "quantity": -1}]},
        {"items": [{"product_id": "P", "quantity": 10**9}]},
        {"items": [{"product_id": "P", "quantity": "1"}]},
        {"items": [{"product_id": "P", "quantity": 1.5}]},
        {"items": [{"product_id": 2**64, "quantity": 1}]},
        {"items": [{"product_id": 0, "quantity": 1}]},
        {"items": [{"product_id": "P"}]},
        {"items": [{"product_id": "P", "quantity": 1, "price": 0}]},
        {"items": [{"product_id": "P", "quantity": 1}], "user_id": 1},
        {"items": [{"product_id": "P", "quantity": 1}, {"product_id": "P", "quantity": 2}]},
        {
            "items": [{"product_id": "P", "quantity": 1}]
            + [{"product_id": i, "quantity": 1} for i in range(9, 120)]
        },
    ],
)
def test_invalid_bodies_are_422(client, make_product, user_headers, body):
    pid = make_product(stock=5)["id"]
    body = _substitute(body, pid)
    response = client.post(ORDERS, json=body, headers=user_headers)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"]["json"]


def _substitute(value, pid):
    if value == "P":
        return pid
    if isinstance(value, dict):
        return {k: _substitute(v, pid) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, pid) for v in value]
    return value


def test_duplicate_product_lines_are_refused_not_merged(client, make_product, user_headers):
    pid = make_product(stock=5)["id"]
    body = {"items": [{"product_id": pid, "quantity": 1}, {"product_id": pid, "quantity": 1}]}
    response = client.post(ORDERS, json=body, headers=user_headers)
    assert response.status_code == 422
    assert "more than once" in response.get_json()["errors"]["json"]["items"][0]


def test_unknown_and_deleted_products_are_422_naming_them(place, make_product, user_headers, app):
    live, gone = make_product()["id"], make_product(deleted=True)["id"]
    response = place(user_headers, [(live, 1), (gone, 1), (999_999, 1)])
    assert response.status_code == 422
    message = response.get_json()["errors"]["json"]["items"][0]
    assert str(gone) in message and "999999" in message
    with app.app_context():
        assert (Order.query.count(), OrderItem.query.count()) == (0, 0)


def test_a_total_beyond_the_column_is_422(place, make_product, user_headers, app):
    cheap, dear = (
        make_product(stock=10, price="1.00")["id"],
        make_product(stock=10_000, price="99999999.99")["id"],
    )
    response = place(user_headers, [(cheap, 1), (dear, 10_000)])
    assert response.status_code == 422
    assert "must not exceed" in response.get_json()["errors"]["json"]["items"][0]
    with app.app_context():
        assert (Order.query.count(), OrderItem.query.count()) == (0, 0)


def test_malformed_json_is_400(client, user_headers):
    response = client.post(ORDERS, data="{nope", headers={**user_headers, "Content-Type": "application/json"})
    assert_error(response, 400)


# --- idempotency -------------------------------------------------------------------------


def test_same_key_and_body_returns_the_first_order(app, place, make_product, user_headers):
    a, b = make_product()["id"], make_product()["id"]
    first = place(user_headers, [(a, 1), (b, 2)], key="k-1")
    again = place(user_headers, [(a, 1), (b, 2)], key="k-1")
    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    with app.app_context():
        assert Order.query.count() == 1
        queued = queue_jobs.get_queue("stock").job_ids
    assert len(queued) == 1 and queued[0].startswith(order_jobs.DRAIN_JOB_PREFIX)


def test_same_key_other_body_is_409(place, make_product, user_headers):
    pid = make_product()["id"]
    assert place(user_headers, [(pid, 1)], key="k-2").status_code == 202
    response = place(user_headers, [(pid, 2)], key="k-2")
    assert response.status_code == 409
    assert "Idempotency-Key" in response.get_json()["message"]


def test_keys_are_scoped_to_the_user(place, make_product, user_headers, make_user, auth_headers):
    pid = make_product()["id"]
    other = auth_headers(make_user())
    first = place(user_headers, [(pid, 1)], key="shared")
    second = place(other, [(pid, 1)], key="shared")
    assert second.status_code == 202
    assert second.get_json()["id"] != first.get_json()["id"]


def test_overlong_key_is_422(place, make_product, user_headers):
    response = place(user_headers, [(make_product()["id"], 1)], key="k" * 256)
    assert response.status_code == 422
    assert "Idempotency-Key" in response.get_json()["errors"]["headers"]


def test_a_lost_race_on_the_key_returns_the_winner(app, place, make_product, user_headers, monkeypatch):
    pid = make_product()["id"]
    winner = place(user_headers, [(pid, 1)], key="race").get_json()
    real_by_key = service._by_key
    calls = []

    def first_lookup_misses(user_id, key):
        calls.append(key)
        return None if len(calls) == 1 else real_by_key(user_id, key)

    # The second request does not see the first before inserting: the unique constraint decides.
    monkeypatch.setattr(service, "_by_key", first_lookup_misses)
    response = place(user_headers, [(pid, 1)], key="race")
    assert response.status_code == 202
    assert response.get_json()["id"] == winner["id"]
    assert place(user_headers, [(pid, 3)], key="race").status_code == 409
    with app.app_context():
        assert Order.query.count() == 1


def test_a_keyed_post_holds_one_pooled_connection_while_it_creates(
    app, place, make_product, user_headers, monkeypatch
):
    from project.extensions import db

    pid = make_product()["id"]
    real_insert = service._insert
    held = []

    def counting_insert(connection, *args):
        held.append(db.engine.pool.checkedout())
        return real_insert(connection, *args)

    monkeypatch.setattr(service, "_insert", counting_insert)
    assert place(user_headers, [(pid, 1)], key="one-connection").status_code == 202
    # The create's own: the key's lookup (the request's session) gave its connection back.
    assert held == [1]


def test_openapi_documents_the_idempotency_header(client):
    spec = client.get("/openapi.json").get_json()
    params = spec["paths"][ORDERS]["post"]["parameters"]
    assert any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in params)
    assert "202" in spec["paths"][ORDERS]["post"]["responses"]


# --- reading -----------------------------------------------------------------------------


def test_another_users_order_is_404_and_admin_sees_it(
    client, place, make_product, user_headers, make_user, auth_headers, admin_headers
):
    order = place(user_headers, [(make_product()["id"], 1)]).get_json()
    stranger = auth_headers(make_user())
    for path in (f"{ORDERS}/{order['id']}",):
        assert client.get(path, headers=stranger).status_code == 404
    assert client.post(f"{ORDERS}/{order['id']}/pay", headers=stranger).status_code == 404
    assert client.post(f"{ORDERS}/{order['id']}/cancel", headers=stranger).status_code == 404
    assert client.get(f"{ORDERS}/{order['id']}", headers=admin_headers).get_json()["id"] == order["id"]


@pytest.mark.parametrize("order_id", ["999999", str(2**63), str(2**70), "0"])
def test_unknown_and_huge_ids_are_404(client, user_headers, order_id):
    for method, suffix in (("get", ""), ("post", "/pay"), ("post", "/cancel")):
        response = getattr(client, method)(f"{ORDERS}/{order_id}{suffix}", headers=user_headers)
        assert response.status_code == 404
        assert response.get_json()["code"] == 404


def test_list_shows_own_orders_paginated_and_filtered(
    client, place, make_product, user_headers, make_user, auth_headers, run_jobs
):
    pid, scarce = make_product(stock=100)["id"], make_product(stock=0)["id"]
    mine = [place(user_headers, [(pid, 1)]).get_json()["id"] for _ in range(3)]
    failing = place(user_headers, [(scarce, 1)]).get_json()["id"]
    place(auth_headers(make_user()), [(pid, 1)])
    run_jobs(("stock",))

    page = client.get(f"{ORDERS}?per_page=2", headers=user_headers).get_json()
    assert (page["total"], page["pages"], page["per_page"], len(page["items"])) == (4, 2, 2, 2)
    everything = client.get(f"{ORDERS}?per_page=100", headers=user_headers).get_json()
    assert {o["id"] for o in everything["items"]} == {*mine, failing}
    failed = client.get(f"{ORDERS}?status=failed", headers=user_headers).get_json()
    assert [o["id"] for o in failed["items"]] == [failing]
    none = client.get(f"{ORDERS}?status=paid", headers=user_headers).get_json()
    assert none["items"] == [] and none["pages"] == 0


def test_a_user_cannot_filter_by_another_user(
    client, place, make_product, user_headers, make_user, auth_headers
):
    other = make_user()
    place(auth_headers(other), [(make_product()["id"], 1)])
    page = client.get(f"{ORDERS}?user_id={other['id']}", headers=user_headers).get_json()
    assert page["total"] == 0


def test_admin_lists_all_and_filters_by_user(
    client, place, make_product, user, user_headers, make_user, auth_headers, admin_headers
):
    pid = make_product(stock=100)["id"]
    place(user_headers, [(pid, 1)])
    other = make_user()
    theirs = place(auth_headers(other), [(pid, 1)]).get_json()
    assert client.get(ORDERS, headers=admin_headers).get_json()["total"] == 2
    page = client.get(f"{ORDERS}?user_id={other['id']}", headers=admin_headers).get_json()
    assert [o["id"] for o in page["items"]] == [theirs["id"]]


@pytest.mark.parametrize(
    "query", ["status=shipped", "per_page=101", "page=0", "per_page=0", "user_id=abc", f"user_id={2**64}"]
)
def test_bad_list_queries_are_422(client, admin_headers, query):
    response = client.get(f"{ORDERS}?{query}", headers=admin_headers)
    assert response.status_code == 422
    assert response.get_json()["errors"]["query"]


def test_trailing_slash_answers_the_same(client, user_headers):
    response = client.get(f"{ORDERS}/", headers=user_headers)
    assert response.status_code == 200
    assert response.get_json()["items"] == []


# --- transitions -------------------------------------------------------------------------


def _reserved_order(place, make_product, headers, run_jobs, stock=5, quantity=2):
    pid = make_product(stock=stock)["id"]
    order = place(headers, [(pid, quantity)]).get_json()
    run_jobs(("stock",))
    return order["id"], pid


def test_pay_a_reserved_order(client, place, make_product, stock_of, user_headers, run_jobs):
    order_id, pid = _reserved_order(place, make_product, user_headers, run_jobs)
    response = client.post(f"{ORDERS}/{order_id}/pay", headers=user_headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == "paid"
    assert stock_of(pid) == 3  # paid keeps the reservation
    again = client.post(f"{ORDERS}/{order_id}/pay", headers=user_headers)
    assert again.status_code == 409
    assert client.post(f"{ORDERS}/{order_id}/cancel", headers=user_headers).status_code == 409


def test_pay_a_pending_order_is_409(client, place, make_product, user_headers):
    order = place(user_headers, [(make_product()["id"], 1)]).get_json()
    response = client.post(f"{ORDERS}/{order['id']}/pay", headers=user_headers)
    assert response.status_code == 409
    assert "pending" in response.get_json()["message"]


def test_failed_order_can_be_neither_paid_nor_cancelled(client, place, make_product, user_headers, run_jobs):
    order = place(user_headers, [(make_product(stock=0)["id"], 1)]).get_json()
    run_jobs(("stock",))
    assert client.post(f"{ORDERS}/{order['id']}/pay", headers=user_headers).status_code == 409
    assert client.post(f"{ORDERS}/{order['id']}/cancel", headers=user_headers).status_code == 409


def test_cancel_a_reserved_order_returns_the_stock_once(
    client, place, make_product, stock_of, user_headers, run_jobs
):
    order_id, pid = _reserved_order(place, make_product, user_headers, run_jobs)
    assert stock_of(pid) == 3
    response = client.post(f"{ORDERS}/{order_id}/cancel", headers=user_headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    assert stock_of(pid) == 5  # within the request
    assert client.post(f"{ORDERS}/{order_id}/cancel", headers=user_headers).status_code == 409
    assert client.post(f"{ORDERS}/{order_id}/pay", headers=user_headers).status_code == 409
    assert stock_of(pid) == 5


def test_cancel_a_pending_order_then_the_job_changes_nothing(
    client, place, make_product, stock_of, user_headers, run_jobs
):
    pid = make_product(stock=5)["id"]
    order = place(user_headers, [(pid, 2)]).get_json()
    response = client.post(f"{ORDERS}/{order['id']}/cancel", headers=user_headers)
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    run_jobs(("stock",))
    assert client.get(f"{ORDERS}/{order['id']}", headers=user_headers).get_json()["status"] == "cancelled"
    assert stock_of(pid) == 5


def test_admin_may_cancel_and_pay_any_order(
    client, place, make_product, stock_of, user_headers, admin_headers, run_jobs
):
    first, pid = _reserved_order(place, make_product, user_headers, run_jobs)
    second, _ = _reserved_order(place, make_product, user_headers, run_jobs)
    assert client.post(f"{ORDERS}/{first}/cancel", headers=admin_headers).get_json()["status"] == "cancelled"
    assert stock_of(pid) == 5
    assert client.post(f"{ORDERS}/{second}/pay", headers=admin_headers).get_json()["status"] == "paid"


def test_a_job_run_twice_reserves_once(app, client, place, make_product, stock_of, user_headers, run_jobs):
    pid = make_product(stock=5)["id"]
    order = place(user_headers, [(pid, 2)]).get_json()
    with app.app_context():  # a duplicate drain under another job id
        queue_jobs.enqueue("stock", order_jobs.drain_orders, job_id="duplicate")
    run_jobs(("stock",))
    assert stock_of(pid) == 3
    with app.app_context():
        assert order_jobs.drain_orders() == 0
    assert client.get(f"{ORDERS}/{order['id']}", headers=user_headers).get_json()["status"] == "reserved"
    assert stock_of(pid) == 3


def test_one_drain_reserves_every_order_posted_before_it(
    app, client, place, make_product, stock_of, user_headers, run_jobs
):
    pid = make_product(stock=10)["id"]
    ids = [place(user_headers, [(pid, 2)]).get_json()["id"] for _ in range(4)]
    with app.app_context():  # the first POST queued a drain; the others found it waiting
        assert len(queue_jobs.get_queue("stock").job_ids) == 1
    run_jobs(("stock",))
    statuses = [client.get(f"{ORDERS}/{i}", headers=user_headers).get_json()["status"] for i in ids]
    assert statuses == ["reserved"] * 4
    assert stock_of(pid) == 2
    # The drain removed its flag before reading: the next POST queues a new drain.
    later = place(user_headers, [(pid, 2)]).get_json()["id"]
    run_jobs(("stock",))
    assert client.get(f"{ORDERS}/{later}", headers=user_headers).get_json()["status"] == "reserved"
    assert stock_of(pid) == 0


def test_one_batch_settles_each_order_all_or_none_oldest_first(
    app, client, place, make_product, stock_of, user_headers, monkeypatch
):
    from project.database import utcnow
    from project.extensions import db
    from project.products.models import Product

    a, b = make_product(stock=5, name="Apples")["id"], make_product(stock=4)["id"]
    gone = make_product(stock=9)["id"]
    lines = [
        [(a, 3), (b, 1)],  # reserved: 2 apples and 3 b left
        [(b, 1), (a, 3)],  # 3 apples of 2: failed, its b not taken
        [(a, 2)],  # reserved: the apples are gone
        [(b, 3), (gone, 1)],  # a deleted product: failed, its b not taken
        [(b, 3)],  # reserved
    ]
    ids = [place(user_headers, order).get_json()["id"] for order in lines]
    with app.app_context():
        db.session.get(Product, gone).deleted_at = utcnow()
        db.session.commit()
    settled_by_batch = []
    batch = state_machine.reserve_batch

    def counted(limit):
        settled_by_batch.append(batch(limit))
        return settled_by_batch[-1]

    monkeypatch.setattr(state_machine, "reserve_batch", counted)
    with app.app_context():
        assert order_jobs.drain_orders() == 5
    assert settled_by_batch == [5, 0]  # one transaction for the five
    orders = [client.get(f"{ORDERS}/{i}", headers=user_headers).get_json() for i in ids]
    assert [(o["status"], o["failure_reason"]) for o in orders] == [
        ("reserved", None),
        ("failed", f"Not enough stock for product {a} (Apples): 3 requested, 2 available."),
        ("reserved", None),
        ("failed", f"Product {gone} is no longer available."),
        ("reserved", None),
    ]
    assert (stock_of(a), stock_of(b), stock_of(gone)) == (0, 0, 9)


def test_an_order_whose_reservation_raises_on_every_try_is_failed_with_a_reason(
    app, client, place, make_product, stock_of, user_headers, monkeypatch
):
    from sqlalchemy.exc import OperationalError

    bad, good = make_product(stock=5)["id"], make_product(stock=5)["id"]
    poison = place(user_headers, [(bad, 1)]).get_json()["id"]
    fine = place(user_headers, [(good, 1)]).get_json()["id"]
    take = stock.take

    def take_or_raise(units):
        if bad in units:
            raise OperationalError("UPDATE products", {}, Exception("server closed the connection"))
        return take(units)

    def batch_raises(limit):
        raise OperationalError("SELECT orders", {}, Exception("canceling statement"))

    # The batch fails (and not for a lost connection): the drain goes on order by order,
    # where the poisoned order is the one that raises and whose tries are counted.
    monkeypatch.setattr(state_machine, "reserve_batch", batch_raises)
    monkeypatch.setattr(stock, "take", take_or_raise)
    with app.app_context():
        for _ in range(order_jobs.RESERVE_TRIES - 1):  # the first try and the retries but one
            with pytest.raises(OperationalError):
                order_jobs.drain_orders()
        assert client.get(f"{ORDERS}/{poison}", headers=user_headers).get_json()["status"] == "pending"
        assert order_jobs.drain_orders() == 2  # the last try: failed, and the drain goes on
    order = client.get(f"{ORDERS}/{poison}", headers=user_headers).get_json()
    assert (order["status"], order["failure_reason"]) == ("failed", order_jobs.GAVE_UP_REASON)
    assert client.get(f"{ORDERS}/{fine}", headers=user_headers).get_json()["status"] == "reserved"
    assert (stock_of(bad), stock_of(good)) == (5, 4)


# --- recovery ----------------------------------------------------------------------------


@pytest.mark.app_config(ORDERS_REQUEUE_AFTER_SECONDS=0)
def test_an_order_whose_enqueue_failed_is_reserved_after_recovery(
    client, place, make_product, stock_of, user_headers, run_jobs, in_app, enqueue_fails
):
    pid = make_product(stock=5)["id"]
    with enqueue_fails():
        response = place(user_headers, [(pid, 2)])
    assert response.status_code == 202
    order_id = response.get_json()["id"]
    run_jobs(("stock",))  # nothing was queued
    assert client.get(f"{ORDERS}/{order_id}", headers=user_headers).get_json()["status"] == "pending"

    assert in_app(order_jobs.requeue_lost_orders) == 1
    run_jobs(("stock",))
    assert client.get(f"{ORDERS}/{order_id}", headers=user_headers).get_json()["status"] == "reserved"
    assert stock_of(pid) == 3
    assert in_app(order_jobs.requeue_lost_orders) == 0


@pytest.mark.app_config(ORDERS_REQUEUE_AFTER_SECONDS=0)
def test_recovery_leaves_orders_with_a_live_job_alone(app, place, make_product, user_headers, in_app):
    place(user_headers, [(make_product()["id"], 1)])
    assert in_app(order_jobs.requeue_lost_orders) == 0
    with app.app_context():
        assert len(queue_jobs.get_queue("stock").job_ids) == 1


def test_recovery_waits_before_calling_an_order_lost(
    place, make_product, user_headers, in_app, enqueue_fails
):
    with enqueue_fails():
        place(user_headers, [(make_product()["id"], 1)])
    assert in_app(order_jobs.requeue_lost_orders) == 0  # younger than 60 s: maybe in flight


@pytest.mark.app_config(RESERVATION_TTL_MINUTES=0)
def test_expired_reservations_are_cancelled_and_stock_returned(
    client, place, make_product, stock_of, user_headers, run_jobs, in_app
):
    expiring, pid = _reserved_order(place, make_product, user_headers, run_jobs)
    paid, paid_pid = _reserved_order(place, make_product, user_headers, run_jobs)
    client.post(f"{ORDERS}/{paid}/pay", headers=user_headers)
    assert in_app(order_jobs.expire_reservations) == 1
    body = client.get(f"{ORDERS}/{expiring}", headers=user_headers).get_json()
    assert body["status"] == "cancelled"
    assert "expired" in body["failure_reason"]
    assert (stock_of(pid), stock_of(paid_pid)) == (5, 3)
    assert in_app(order_jobs.expire_reservations) == 0
    assert stock_of(pid) == 5


def test_fresh_reservations_do_not_expire(
    client, place, make_product, stock_of, user_headers, run_jobs, in_app
):
    order_id, pid = _reserved_order(place, make_product, user_headers, run_jobs)
    assert in_app(order_jobs.expire_reservations) == 0
    assert client.get(f"{ORDERS}/{order_id}", headers=user_headers).get_json()["status"] == "reserved"


def test_cached_product_shows_stock_moved_by_orders(client, user_headers, make_product, place, run_jobs):
    """Reserving and returning stock invalidate the product cache: no stale stock is shown."""
    product_id = make_product(stock=5)["id"]
    url = f"/api/v1/products/{product_id}"
    assert client.get(url).get_json()["stock"] == 5
    assert client.get(url).headers["X-Cache"] == "HIT"

    order = place(user_headers, [(product_id, 2)]).get_json()
    run_jobs()
    fresh = client.get(url)
    assert fresh.headers["X-Cache"] == "MISS"
    assert fresh.get_json()["stock"] == 3

    assert client.get(url).headers["X-Cache"] == "HIT"
    assert client.post(f"{ORDERS}/{order['id']}/cancel", headers=user_headers).status_code == 200
    assert client.get(url).get_json()["stock"] == 5


@pytest.mark.app_config(ORDERS_REQUEUE_AFTER_SECONDS=0)
def test_an_order_lost_again_and_again_is_failed_not_requeued_forever(
    app, client, place, make_product, stock_of, user_headers, in_app
):
    pid = make_product(stock=5)["id"]
    order_id = place(user_headers, [(pid, 1)]).get_json()["id"]
    counts = []
    for _ in range(order_jobs.MAX_REQUEUES + 2):
        with app.app_context():
            # Every (re-)queued drain vanishes before it runs, as when Redis loses it.
            queue_jobs.get_queue("stock").empty()
        counts.append(in_app(order_jobs.requeue_lost_orders))
    assert counts == [1] * order_jobs.MAX_REQUEUES + [0, 0]
    order = client.get(f"{ORDERS}/{order_id}", headers=user_headers).get_json()
    assert order["status"] == "failed"
    assert order["failure_reason"] == order_jobs.GAVE_UP_REASON
    assert stock_of(pid) == 5

"""The account, catalogue, order and project flow through a client that openapi-python-client
generated from /openapi.json, used as generated (no patches).

Run by tests/test_generated_client.py in the generator's own venv (it has httpx and attrs):
    python generated_client_flow.py CLIENT_DIR BASE_URL ADMIN_EMAIL ADMIN_PASSWORD
Prints one line per step and exits non-zero at the first step that does not do what the
document promises. Not a pytest module: it imports the generated package.
"""

from __future__ import annotations

import datetime
import importlib
import pkgutil
import sys
import uuid
from typing import Any

sys.path.insert(0, sys.argv[1])
BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD = sys.argv[2:5]

import api_client  # noqa: E402  (generated into CLIENT_DIR)
from api_client import AuthenticatedClient, Client  # noqa: E402
from api_client.api.auth import login, logout, refresh_token, register  # noqa: E402
from api_client.api.orders import cancel_order, create_order, get_order, list_orders, pay_order  # noqa: E402
from api_client.api.products import (  # noqa: E402
    create_product,
    get_product,
    get_sync_status,
    list_products,
    search_products,
)
from api_client.api.projects import (  # noqa: E402
    add_member,
    create_project,
    create_task,
    delete_project,
    delete_task,
    list_tasks,
    update_task,
)
from api_client.api.users import get_me  # noqa: E402
from api_client.models import (  # noqa: E402
    Error,
    ListTasksStatus,
    LoginForm,
    LoginJson,
    OrderCreate,
    OrderItemIn,
    OrderStatus,
    ProductIn,
    ProjectCreate,
    Refresh,
    RefreshForm,
    RefreshFormGrantType,
    Register,
    TaskCreate,
    TaskCreateStatus,
    TaskStatus,
    TaskUpdate,
    TaskUpdateStatus,
    TokenPair,
    UserRole,
)


def step(name: str, value: Any, expected_type: type, check: bool = True) -> Any:
    if not isinstance(value, expected_type) or not check:
        print(f"FAIL {name}: got {value!r}")
        sys.exit(1)
    print(f"ok   {name}")
    return value


def main() -> None:
    modules = [m.name for m in pkgutil.walk_packages(api_client.__path__, "api_client.")]
    for module in modules:
        importlib.import_module(module)
    print(f"ok   every generated module imports ({len(modules)})")

    # Any status code the document does not list raises (httpx-level UnexpectedStatus).
    anonymous = Client(base_url=BASE_URL, raise_on_unexpected_status=True)

    def signed_in(token: str) -> AuthenticatedClient:
        return AuthenticatedClient(base_url=BASE_URL, token=token, raise_on_unexpected_status=True)

    tag = uuid.uuid4().hex[:8]
    email, username, password = f"ann-{tag}@example.com", f"ann_{tag}", "Sup3r$ecret!"

    # Accounts: register, log in (JSON and the OAuth2 form), me, refresh (form and JSON), reuse.
    me = step("register", register.sync(client=anonymous, body=Register(email, username, password)), object)
    step("register answers a user", me.role, UserRole, me.role == UserRole.USER and not me.is_verified)
    taken = register.sync(client=anonymous, body=Register(email, f"x{username}", password))
    step("register twice is a 409 Error", taken, Error, taken.code == 409 and "taken" in taken.message)
    pair = login.sync(client=anonymous, body=LoginJson(username=username, password=password))
    step("login (JSON)", pair, TokenPair)
    form_pair = login.sync(client=anonymous, body=LoginForm(username=email, password=password))
    step("login (OAuth2 form)", form_pair, TokenPair, form_pair.token_type == "bearer")
    wrong = login.sync(client=anonymous, body=LoginJson(email=email, password="Wrong!Passw0rd"))
    step("a wrong password is a 401 Error", wrong, Error, wrong.code == 401)
    user = signed_in(pair.access_token)
    me = get_me.sync(client=user)
    step("getMe", me.email, str, me.email == email and me.id > 0)
    grant = RefreshForm(grant_type=RefreshFormGrantType.REFRESH_TOKEN, refresh_token=pair.refresh_token)
    rotated = step("refresh (OAuth2 form grant)", refresh_token.sync(client=anonymous, body=grant), TokenPair)
    reused = refresh_token.sync(client=anonymous, body=Refresh(refresh_token=pair.refresh_token))
    step("a spent refresh token is a 401 Error", reused, Error, reused.code == 401)
    ended = get_me.sync(client=signed_in(rotated.access_token))
    step("reuse ended the session: its new access token is a 401", ended, Error, ended.code == 401)
    pair = login.sync(client=anonymous, body=LoginJson(email=email, password=password))
    user = signed_in(step("log in again", pair, TokenPair).access_token)

    # Catalogue: an admin creates a product; anyone lists, searches and reads it.
    admin_pair = login.sync(client=anonymous, body=LoginJson(email=ADMIN_EMAIL, password=ADMIN_PASSWORD))
    admin = signed_in(step("admin login", admin_pair, TokenPair).access_token)
    body = ProductIn(sku=f"LAMP-{tag}", name=f"Desk lamp {tag}", price=19.99, stock=5, category="lighting")
    product = step("createProduct (admin)", create_product.sync(client=admin, body=body), object)
    forbidden = create_product.sync(client=user, body=ProductIn(sku=f"X-{tag}", name="x", price=1.0))
    step("createProduct as a user is a 403 Error", forbidden, Error, forbidden.code == 403)
    page = list_products.sync(client=anonymous, name=tag)
    step("listProducts", page.total, int, page.total == 1 and page.items[0].id == product.id)
    found = search_products.sync(client=anonymous, q=f"lamp {tag}")
    step("searchProducts", found.total, int, found.total == 1)
    one = get_product.sync(product.id, client=anonymous)
    step(
        "getProduct", one.created_at, datetime.datetime, one.sku == f"LAMP-{tag}" and one.external_id is None
    )
    missing = get_product.sync(2147483647, client=anonymous)
    step("an unknown product is a 404 Error", missing, Error, missing.code == 404 and missing.message)
    status = get_sync_status.sync(client=admin)
    step("getSyncStatus (typed, null before any sync)", status.last_run, type(None))

    # Orders: place one, read it, pay it too early (409), cancel it.
    items = [OrderItemIn(product_id=product.id, quantity=2)]
    order = create_order.sync(client=user, body=OrderCreate(items=items))
    step("createOrder answers 202 pending", order.status, OrderStatus, order.status == OrderStatus.PENDING)
    step("getOrder", get_order.sync(order.id, client=user).total, float, order.total == 39.98)
    step("listOrders", list_orders.sync(client=user).total, int, order.items[0].unit_price == 19.99)
    early = pay_order.sync(order.id, client=user)
    step("paying a pending order is a 409 Error", early, Error, early.code == 409)
    cancelled = cancel_order.sync(order.id, client=user)
    step("cancelOrder", cancelled.status, OrderStatus, cancelled.status == OrderStatus.CANCELLED)

    # Projects: create one, add a member, a task with a status, update, list, delete.
    project = create_project.sync(client=user, body=ProjectCreate(name=f"Apollo {tag}"))
    step("createProject", project.owner_id, int, project.owner_id == me.id and project.member_ids == [])
    admin_me = get_me.sync(client=admin)
    project = add_member.sync(project.id, admin_me.id, client=user)
    step("addMember", project.member_ids, list, project.member_ids == [admin_me.id])
    due = datetime.date(2026, 12, 1)
    task_body = TaskCreate(title="Fuel", status=TaskCreateStatus.IN_PROGRESS, assignee_id=me.id, due_date=due)
    task = create_task.sync(project.id, client=user, body=task_body)
    step("createTask with a status", task.status, TaskStatus, task.status == TaskStatus.IN_PROGRESS)
    step("a task's due date is a date", task.due_date, datetime.date, task.due_date == due)
    done = update_task.sync(project.id, task.id, client=admin, body=TaskUpdate(status=TaskUpdateStatus.DONE))
    step("updateTask (a member)", done.status, TaskStatus, done.status == TaskStatus.DONE)
    listed = list_tasks.sync(project.id, client=user, status=ListTasksStatus.DONE)
    step("listTasks filtered", listed.total, int, listed.total == 1)
    deleted = delete_task.sync_detailed(project.id, task.id, client=user).status_code
    step("deleteTask", deleted, int, deleted == 204)
    deleted = delete_project.sync_detailed(project.id, client=admin).status_code
    step("deleteProject (an admin)", deleted, int, deleted == 204)

    # Logout revokes the access token at once.
    logged_out = logout.sync_detailed(client=user).status_code
    step("logout", logged_out, int, logged_out == 204)
    gone = get_me.sync(client=user)
    step("the token is dead after logout", gone, Error, gone.code == 401)
    print("FLOW OK")


if __name__ == "__main__":
    main()

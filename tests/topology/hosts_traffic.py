"""The stack and the mixed traffic of the "past one host" topology tests (test_hosts_*.py).

`Stack.start()` runs what a platform team runs on several hosts, against the DATABASE_URL and
REDIS_URL given: two gunicorn instances, an RQ worker, the scheduler and the gRPC server.
`Traffic` sends mixed requests from a few threads while a test breaks something: product
reads, stock writes each followed by a read on the OTHER instance (a stale read is counted),
orders, and gRPC token checks. Every request is bounded by a timeout.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from dataclasses import dataclass, field

import grpc
import requests

from project.rpc.generated import auth_pb2, auth_pb2_grpc
from tests.helpers import free_port
from tests.topology.harness import PRODUCTION_ENV, Service, Topology

ADMIN_EMAIL, ADMIN_PASSWORD = "ops@example.com", "Topology!Passw0rd"
TIMEOUT = 15  # seconds, every HTTP request and gRPC call

# Production mode, with what these tests need: limits far above the traffic, fast recovery
# of orders whose job was lost.
STACK_ENV = {
    **PRODUCTION_ENV,
    "RATE_LIMIT_DEFAULT": "100000/minute",
    "RATE_LIMIT_AUTH": "100000/minute",
    "ORDERS_RECOVERY_INTERVAL_SECONDS": "3",
    "ORDERS_REQUEUE_AFTER_SECONDS": "3",
    "GUNICORN_WORKERS": "2",
    "GRPC_WORKERS": "1",
}


@dataclass
class Stack:
    topology: Topology
    env: dict[str, str]
    webs: list[Service] = field(default_factory=list)
    worker: Service | None = None
    scheduler: Service | None = None
    grpc_port: int = 0
    token: str = ""
    products: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, topology: Topology, database_url: str, redis_url: str, *, migrate_url: str = "") -> Stack:
        env = {**STACK_ENV, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
        topology.migrate({**env, "DATABASE_URL": migrate_url or database_url})
        topology.flask(env, "users", "create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
        stack = cls(topology, env)
        stack.webs = [topology.gunicorn(env, name=f"web{n}") for n in (1, 2)]
        stack.worker = topology.app_process("worker", ["worker.py"], env)
        stack.scheduler = topology.app_process("scheduler", ["worker.py", "--scheduler"], env)
        stack.grpc_port = free_port()
        topology.app_process(
            "grpc", ["grpc_server.py"], {**env, "GRPC_PORT": str(stack.grpc_port)}, port=stack.grpc_port
        )
        stack.token = stack.login()
        # One product per writer thread (its stock is only that thread's), one for orders.
        stack.products = [stack.create_product(f"HOST-{n}", 100000) for n in range(5)]
        return stack

    def url(self, instance: int = 0) -> str:
        return f"http://127.0.0.1:{self.webs[instance % len(self.webs)].port}/api/v1"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def login(self) -> str:
        answer = requests.post(
            f"{self.url()}/auth/login",
            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            timeout=TIMEOUT,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    def create_product(self, sku: str, stock: int) -> int:
        body = {"sku": sku, "name": f"Product {sku}", "price": 9.5, "stock": stock}
        answer = requests.post(f"{self.url()}/products", json=body, headers=self.headers, timeout=TIMEOUT)
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def order_statuses(self, ids: list[int]) -> collections.Counter:
        statuses: collections.Counter = collections.Counter()
        for order_id in ids:
            answer = requests.get(f"{self.url()}/orders/{order_id}", headers=self.headers, timeout=TIMEOUT)
            statuses[answer.json().get("status") if answer.status_code == 200 else answer.status_code] += 1
        return statuses

    def wait_orders_settled(self, ids: list[int], timeout: float = 90) -> collections.Counter:
        """Every order reserved (bounded): none lost, none left pending."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.order_statuses(ids)
            if statuses == collections.Counter({"reserved": len(ids)}) or time.monotonic() > deadline:
                return statuses
            time.sleep(1)

    def health(self) -> dict:
        answer = requests.get(f"http://127.0.0.1:{self.webs[0].port}/health/full", timeout=TIMEOUT)
        return answer.json()


@dataclass
class Traffic:
    """Mixed traffic from `threads` threads until `stop()`; counts what came back."""

    stack: Stack
    threads: int = 4
    statuses: collections.Counter = field(default_factory=collections.Counter)
    grpc_answers: collections.Counter = field(default_factory=collections.Counter)
    stale_reads: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)
    sent: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Traffic:
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, args=(n,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def stop(self) -> Traffic:
        self._stop.set()
        for thread in self._workers:
            thread.join(timeout=TIMEOUT * 3)
        return self

    def run(self, requests_wanted: int) -> Traffic:
        """Until about `requests_wanted` requests were sent (bounded: 3 minutes)."""
        self.start()
        deadline = time.monotonic() + 180
        while self.sent < requests_wanted and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.stop()

    def _count(self, what: str, answer: requests.Response | None) -> None:
        with self._lock:
            self.sent += 1
            code = answer.status_code if answer is not None else "timeout"
            self.statuses[code] += 1
            if answer is not None and answer.status_code >= 500:
                # A 500 (or another unexpected 5xx) first, so an assertion message shows it.
                place = len(self.failures) if answer.status_code == 503 else 0
                if answer.status_code != 503 or len(self.failures) < 20:
                    self.failures.insert(place, f"{what}: {answer.status_code} {answer.text[:200]}")
            if answer is not None and answer.status_code >= 500 and answer.status_code != 500:
                assert answer.json()["code"] == answer.status_code, answer.text  # the error shape

    def _request(self, what: str, method: str, url: str, **kwargs) -> requests.Response | None:
        try:
            answer = requests.request(method, url, headers=self.stack.headers, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            with self._lock:
                self.failures.append(f"{what}: {exc.__class__.__name__}")
            answer = None
        self._count(what, answer)
        return answer

    def _run(self, n: int) -> None:
        stack = self.stack
        own = stack.products[n % (len(stack.products) - 1)]  # this thread's stock writes only
        ordered = stack.products[-1]
        channel = grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}")
        check = auth_pb2_grpc.AuthServiceStub(channel).ValidateToken
        for step in itertools.count():
            if self._stop.is_set():
                break
            kind = step % 4
            if kind == 0:
                self._request("read", "GET", f"{stack.url(step)}/products/{own}")
            elif kind == 1:
                self._write_then_read(own, step)
            elif kind == 2:
                answer = self._request(
                    "order",
                    "POST",
                    f"{stack.url(step)}/orders",
                    json={"items": [{"product_id": ordered, "quantity": 1}]},
                )
                if answer is not None and answer.status_code == 202:
                    with self._lock:
                        self.orders.append(answer.json()["id"])
            else:
                try:
                    reply = check(auth_pb2.ValidateTokenRequest(token=stack.token), timeout=TIMEOUT)
                    verdict = "valid" if reply.valid else f"INVALID: {reply.error}"
                except grpc.RpcError as exc:
                    verdict = exc.code().name
                with self._lock:
                    self.sent += 1
                    self.grpc_answers[verdict] += 1
        channel.close()

    def _write_then_read(self, product: int, step: int) -> None:
        stack = self.stack
        answer = self._request(
            "write",
            "PATCH",
            f"{stack.url(step)}/products/{product}/stock",
            json={"delta": 1 if step % 8 else -1},
        )
        if answer is None or answer.status_code != 200:
            return
        written = answer.json()["stock"]
        after = self._request("read after write", "GET", f"{stack.url(step + 1)}/products/{product}")
        if after is not None and after.status_code == 200 and after.json()["stock"] != written:
            with self._lock:
                read = after.json()["stock"]
                self.stale_reads.append(
                    f"product {product}: wrote {written}, read {read} ({after.headers.get('X-Cache')})"
                )

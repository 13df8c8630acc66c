"""The edge as shipped (#23): nginx with deploy/nginx's template in front of gunicorn with
gunicorn.conf.py, a private PostgreSQL and Redis. Slow clients cannot starve the service,
oversized input is refused in the error shape by whoever meets it first, rate limits key on
the real client address, and a stopped gunicorn is a JSON 502.

One stack for the module (each start costs seconds of CPU); the last test stops gunicorn.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import socket
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import STRONG_PASSWORD, send_chunked, wait_for
from tests.topology.harness import PRODUCTION_ENV, Topology

ADMIN = "edge-admin@example.com"
AUTH_LIMIT = 8  # RATE_LIMIT_AUTH per minute, per client address (above the lockout's 5 failures)


class Stack:
    def __init__(self, topology: Topology):
        pg = topology.postgres()
        redis = topology.redis()
        self.env = {
            **PRODUCTION_ENV,
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg.port}/app",
            "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
            "TRUSTED_PROXY_COUNT": "1",
            "RATE_LIMIT_AUTH": f"{AUTH_LIMIT}/minute",
            "LOG_LEVEL": "INFO",
        }
        self.pg_port = pg.port
        topology.migrate(self.env)
        topology.flask(self.env, "users", "create-admin", "--email", ADMIN, "--password", STRONG_PASSWORD)
        self.gunicorn = topology.gunicorn(self.env)
        self.nginx = topology.proxy(self.gunicorn.port)
        self.port = self.nginx.port

    def request(self, method, path, *, body=None, headers=None, port=None, source="127.0.0.1", timeout=10):
        """One request on a fresh connection from `source`: (status, headers, raw body)."""
        connection = http.client.HTTPConnection(
            "127.0.0.1", port or self.port, timeout=timeout, source_address=(source, 0)
        )
        try:
            payload = json.dumps(body).encode() if isinstance(body, dict) else body
            all_headers = {"Content-Type": "application/json"} if isinstance(body, dict) else {}
            connection.request(method, path, body=payload, headers={**all_headers, **(headers or {})})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def login(self, identifier: str, password: str, source: str = "127.0.0.1", headers=None) -> int:
        status, _, _ = self.request(
            "POST",
            "/api/v1/auth/login",
            body={"email": identifier, "password": password},
            source=source,
            headers=headers,
        )
        return status


def assert_error_shape(status: int, headers: dict, body: bytes, code: int, by_app: bool = False) -> dict:
    """The contract's error shape. `by_app`: the app's own answer, whose `error` code is the
    app's business (project/errors.py); nginx's and gunicorn's must carry one."""
    assert status == code, body[:300]
    assert headers["content-type"].startswith("application/json"), headers
    assert headers.get("x-content-type-options") == "nosniff", headers
    answer = json.loads(body)
    assert answer["code"] == code and answer["status"] and answer["message"], answer
    assert by_app or answer["error"], answer
    return answer


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    topology = Topology(tmp_path_factory.mktemp("edge"))
    try:
        yield Stack(topology)
    finally:
        topology.close()


@pytest.fixture(scope="module")
def admin_token(stack):
    status, _, body = stack.request(
        "POST", "/api/v1/auth/login", body={"email": ADMIN, "password": STRONG_PASSWORD}
    )
    assert status == 200, body
    return json.loads(body)["access_token"]


def test_gunicorn_says_who_it_is_and_binds_loopback(stack):
    line = next(line for line in stack.gunicorn.output().splitlines() if "web starting:" in line)
    assert f"listen=http://127.0.0.1:{stack.gunicorn.port}" in line
    assert "workers=" in line and "threads=" in line and "env=production" in line
    assert (
        f"database=postgresql://127.0.0.1:{stack.pg_port}/app" in line and "redis=redis://127.0.0.1:" in line
    )
    assert "Listening at: http://127.0.0.1" in stack.gunicorn.output()  # not gunicorn's empty address


class SlowClients:
    """`header` sockets sending one header line every 2 s and `body` sockets one body byte
    every 2 s (of a promised 100,000), each opened again when the proxy closes it."""

    HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\n"
    BODY = (
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n{"
    )

    def __init__(self, port: int, header: int, body: int):
        self.port = port
        self.kinds = ["header"] * header + ["body"] * body
        self.sockets: list[socket.socket | None] = [None] * len(self.kinds)
        self.stopping = threading.Event()
        self.opened = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open(self, index: int) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=2)
            sock.sendall(self.HEAD if self.kinds[index] == "header" else self.BODY)
            sock.setblocking(False)
            self.sockets[index] = sock
            self.opened += 1
        except OSError:
            self.sockets[index] = None

    def run(self) -> None:
        for index in range(len(self.kinds)):
            self.open(index)
        while not self.stopping.wait(2):
            for index, sock in enumerate(self.sockets):
                try:
                    assert sock is not None
                    sock.send(b"X-Slow: 1\r\n" if self.kinds[index] == "header" else b" ")
                except (OSError, AssertionError):
                    if sock is not None:
                        sock.close()
                    self.open(index)
        for sock in self.sockets:
            if sock is not None:
                sock.close()


def test_slow_clients_do_not_starve_a_normal_client(stack, admin_token):
    status, _, body = stack.request(
        "POST",
        "/api/v1/products",
        body={"sku": "EDGE-1", "name": "Lamp", "price": 10.5, "stock": 3},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert status == 201, body
    product = json.loads(body)["id"]
    paths = ["/health", f"/api/v1/products/{product}", "/api/v1/users/me"]
    auth = {"Authorization": f"Bearer {admin_token}"}
    assert stack.request("GET", paths[1])[0] == 200  # now cached

    attack = SlowClients(stack.port, header=200, body=50)
    attack.thread.start()
    try:
        time.sleep(3)  # every slow socket is open and sending
        started = time.monotonic()
        timings: list[float] = []
        statuses: list[int] = []
        cache: list[str] = []
        # About 30 s of normal traffic while the slow sockets stay open.
        while time.monotonic() - started < 30:
            for path in paths:
                begin = time.perf_counter()
                status, headers, _ = stack.request("GET", path, headers=auth, timeout=5)
                timings.append(time.perf_counter() - begin)
                statuses.append(status)
                if path == paths[1]:
                    cache.append(headers.get("x-cache", ""))
            time.sleep(0.25)
    finally:
        attack.stopping.set()
        attack.thread.join(timeout=20)
    assert attack.opened >= 250
    assert len(timings) >= 100
    assert set(statuses) == {200}, statuses
    assert "HIT" in cache
    p99 = statistics.quantiles(timings, n=100)[98]
    median = statistics.median(timings)
    print(f"under attack: {len(timings)} requests, median {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    assert p99 < 0.1, f"p99 {p99 * 1000:.0f} ms over {len(timings)} requests"


def project_count(stack, token: str) -> int:
    status, _, body = stack.request("GET", "/api/v1/projects", headers={"Authorization": f"Bearer {token}"})
    assert status == 200, body
    return json.loads(body)["total"]


def padded_project(size: int, piece: int = 64 * 1024):
    yield b'{"name":"x"'
    for _ in range(size // piece):
        yield b" " * piece
    yield b"}"


@pytest.mark.parametrize("through", ["proxy", "gunicorn"])
def test_a_chunked_5_mb_body_is_a_413_in_the_error_shape_and_nothing_is_stored(stack, admin_token, through):
    """Through the proxy nginx refuses it; straight to gunicorn the app does, counting."""
    port = stack.port if through == "proxy" else stack.gunicorn.port
    headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    status, answer_headers, body = send_chunked(
        ("127.0.0.1", port), "/api/v1/projects", padded_project(5 * 1024 * 1024), headers
    )
    answer = assert_error_shape(status, answer_headers, body, 413, by_app=through == "gunicorn")
    assert "1048576 bytes" in answer["message"]
    assert project_count(stack, admin_token) == 0


@pytest.mark.parametrize("through", ["proxy", "gunicorn"])
def test_a_5000_digit_query_and_a_100_kb_header_are_json_414_and_431(stack, through):
    port = stack.port if through == "proxy" else stack.gunicorn.port
    assert_error_shape(*stack.request("GET", "/api/v1/products?page=" + "9" * 5000, port=port), 414)
    assert_error_shape(*stack.request("GET", "/health", headers={"X-Big": "a" * 100_000}, port=port), 431)


def test_a_malformed_header_line_is_a_json_400_from_the_proxy(stack):
    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
        raw = b""
        while data := sock.recv(65536):
            raw += data
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), raw[:300]
    assert b"nosniff" in head.lower() and json.loads(body)["code"] == 400


def test_request_ids_pass_through_and_json_and_assets_are_served_as_they_should(stack):
    status, headers, _ = stack.request("GET", "/health", headers={"X-Request-ID": "edge-test-1"})
    assert status == 200 and headers["x-request-id"] == "edge-test-1"
    status, headers, _ = stack.request("GET", "/health", headers={"X-Request-ID": "bad id with spaces"})
    assert status == 200 and len(headers["x-request-id"]) == 32 and " " not in headers["x-request-id"]

    status, headers, body = stack.request("GET", "/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers.get("content-encoding") == "gzip"
    assert json.loads(gzip.decompress(body))["openapi"].startswith("3.")

    status, headers, _ = stack.request("GET", "/static/redoc-2.5.4/redoc.standalone.js")
    assert status == 200 and "max-age=31536000" in headers["cache-control"]
    assert headers["x-content-type-options"] == "nosniff"
    assert_error_shape(*stack.request("GET", "/static/no-such-file.js"), 404)


def test_rate_limits_key_on_the_real_client_address_and_forged_forwarded_for_changes_nothing(stack):
    # Another identifier every time: the login lockout (per identifier) stays out of it.
    first = [
        stack.login(f"nobody{i}@example.com", "Wrong!Passw0rd", source="127.0.0.2") for i in range(AUTH_LIMIT)
    ]
    assert first == [401] * AUTH_LIMIT
    assert stack.login("nobody-x@example.com", "Wrong!Passw0rd", source="127.0.0.2") == 429
    forged = {"X-Forwarded-For": "203.0.113.9"}
    assert stack.login("nobody-y@example.com", "Wrong!Passw0rd", source="127.0.0.2", headers=forged) == 429
    # A second address has a budget of its own.
    assert stack.login("nobody-z@example.com", "Wrong!Passw0rd", source="127.0.0.3") == 401


def test_login_lockout_keys_on_the_real_client_address(stack):
    """Five failures for one identifier from 127.0.0.4 lock it there, not from 127.0.0.5."""
    for _ in range(5):
        assert stack.login(ADMIN, "Wrong!Passw0rd", source="127.0.0.4") == 401
    assert (
        stack.login(ADMIN, STRONG_PASSWORD, source="127.0.0.4", headers={"X-Forwarded-For": "198.51.100.1"})
        == 429
    )
    assert stack.login(ADMIN, STRONG_PASSWORD, source="127.0.0.5") == 200


def worker_pids(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return {int(pid) for pid in children}


def test_a_graceful_gunicorn_reload_under_traffic_loses_no_request(stack, admin_token):
    """A deploy in place (SIGHUP to gunicorn's master: new workers, the old ones finish what
    they hold and go) under steady reads and writes through the proxy: every request is
    answered by the app, none is reset or a 502."""
    before = worker_pids(stack.gunicorn.pid)
    statuses: Counter = Counter()
    stop = threading.Event()

    def traffic(n: int) -> None:
        # Its own client address, and paced, so no rate limit is reached (/health has none).
        connection = http.client.HTTPConnection(
            "127.0.0.1", stack.port, timeout=15, source_address=(f"127.0.0.{30 + n}", 0)
        )
        i = 0
        while not stop.is_set():
            i += 1
            if i % 10 == 0:  # a write: a project, with the admin's token
                body = json.dumps({"name": f"deploy-{n}-{i}"}).encode()
                headers = {"Content-Type": "application/json", "Authorization": f"Bearer {admin_token}"}
                connection.request("POST", "/api/v1/projects", body=body, headers=headers)
            else:
                connection.request("GET", "/api/v1/products" if i % 5 == 0 else "/health")
            response = connection.getresponse()
            response.read()
            statuses[response.status] += 1
            time.sleep(0.05)

    threads = [threading.Thread(target=traffic, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    os.kill(stack.gunicorn.pid, signal.SIGHUP)  # the master only: each worker is replaced
    wait_for(
        lambda: (now := worker_pids(stack.gunicorn.pid)) and not now & before,
        timeout=30,
        what="every worker replaced",
    )
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=20)
    assert set(statuses) <= {200, 201}, statuses
    assert statuses[201] > 0 and statuses[200] > 0, statuses
    print(f"\nrequests across the reload: {dict(statuses)}")


def test_gunicorn_stopped_is_a_json_502_from_the_proxy(stack):
    """Last: it stops gunicorn."""
    stack.gunicorn.stop()
    answer = assert_error_shape(*stack.request("GET", "/health"), 502)
    assert answer["error"] == "bad_gateway"


class ResetThenAnswer:
    """An upstream that resets every other connection (a worker restarting mid-deploy) and
    answers the rest with a small JSON 200; counts the requests it was handed."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(65536)
                    if self.accepted % 2 == 1:  # RST instead of an answer
                        conn.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                        )
                        continue
                    body = b'{"status": "ok"}'
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                except OSError:
                    pass


def test_the_proxy_retries_an_idempotent_request_on_a_reset_connection_but_never_a_post(topology):
    upstream = ResetThenAnswer()
    try:
        proxy = topology.proxy(upstream.port)
        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        connection.request("GET", "/health")
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read()) == {"status": "ok"}
        assert upstream.accepted == 2  # reset once, retried once
        connection.close()

        connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        connection.request("POST", "/api/v1/orders", body=b"{}", headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 502 and json.loads(response.read())["error"] == "bad_gateway"
        assert upstream.accepted == 3  # a POST is never sent twice
        connection.close()
    finally:
        upstream.listener.close()

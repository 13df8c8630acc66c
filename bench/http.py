"""The hot paths over HTTP, side by side with a floor, in one run.

    python bench/http.py

Serves, at once and under the same gunicorn on loopback:
- the floor: bench/floor_app.py (one Flask JSON route) under `gunicorn -w 2 -k sync`, with
  two more floors, a route making one Redis GET of 4 KB and one making one PostgreSQL row read
  (what the stack allows a route with one round trip: the HIT and /users/me are also compared
  with these);
- the project (production mode, PostgreSQL + Redis, 100 products) under `gunicorn -w 2 -k sync`;
- the project under the shipped `gunicorn.conf.py` (with `GUNICORN_REUSE_PORT=true`: see main());
- the gRPC server (`python grpc_server.py`);
- the shipped topology: nginx with the project's proxy config (deploy/nginx) in front of the
  shipped gunicorn, and the same nginx config in front of the floor (when nginx is installed).
  The proxied project is compared with the same project reached directly (target: >= 0.9x)
  and with the floor behind the same proxy. nginx's CPU counts with the services'.
Then drives them in turns with wrk (`wrk -t2 -c32`, BENCH_SECONDS each, BENCH_ROUNDS rounds
alternating, so the machine's drift hits every case alike) and prints each case's req/s, p99
and ratio to the floor of the same round; the figures are medians over the rounds.
With each run it also reads, from /proc, the CPU time the server's processes used (its
process group) and PostgreSQL's and Redis's, per request (`server_cpu_us`,
`services_cpu_us`), and gives `cpu_ratio`: the base's CPU per request over the case's (server +
services), which reads like the req/s ratio. It says where the time goes (the server, the
database, Redis); it is not much steadier than req/s here: contention on 2 shared cores
raises the CPU each request costs too.
gRPC ValidateToken vs REST /users/me: wrk cannot speak gRPC, so both sides are driven by one
other C load generator, h2load (Debian's nghttp2-client): BENCH_CLIENT_CONNECTIONS
connections, one call in flight on each, for BENCH_SECONDS; HTTP/2 with the encoded request
as the body for gRPC, HTTP/1.1 keep-alive (`--h1`) with the bearer header for REST against
the shipped config. A gRPC call counts only when it answered `valid=true` (the DATA bytes
must be exactly the valid reply's, every one; HTTP 200 alone also carries gRPC errors).
p99 from h2load's per-request log. Without h2load, one Python client drives both
(BENCH_CLIENT_THREADS threads, each with its own keep-alive connection or stub), as before.
The gRPC server runs as shipped: GRPC_WORKERS unset, one process per CPU.

Rate limiting is off (one client address would be limited at once) and LOG_LEVEL=WARNING
(the floor logs nothing either). Environment: BENCH_DATABASE_URL
(postgresql://postgres@127.0.0.1:5432/bench_http, created if missing, schema rebuilt),
BENCH_REDIS_URL (redis://127.0.0.1:6379/14, flushed), BENCH_SECONDS (10), BENCH_ROUNDS (3),
BENCH_CLIENT_CONNECTIONS (16), BENCH_CLIENT_THREADS (16), BENCH_ONLY (comma-separated words: only
the pairs whose name holds one, e.g. `grpc`; such a partial run writes http_partial.json).
Writes bench/results/http.json.
Client and servers share this machine: compare ratios, not absolute figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/http.py` puts bench/ first on sys.path, where this file would shadow the
# standard library's `http` package (the name is the issue's): take that entry out first.
HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]

import collections  # noqa: E402
import http.client  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402

ROOT = HERE.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_http")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CLIENT_THREADS = int(os.environ.get("BENCH_CLIENT_THREADS", "16"))
CLIENT_CONNECTIONS = int(os.environ.get("BENCH_CLIENT_CONNECTIONS", "16"))
H2LOAD = shutil.which("h2load")
VALIDATE_TOKEN_PATH = "/auth.AuthService/ValidateToken"
WRK = ["wrk", "-t2", "-c32", "--latency"]
PRODUCTS = 100
ONLY = [word for word in os.environ.get("BENCH_ONLY", "").split(",") if word]
RESULTS = ROOT / "bench" / "results" / ("http_partial.json" if ONLY else "http.json")
SECRETS = {
    "SECRET_KEY": "bench-secret-key-0123456789abcdef0123",
    "JWT_SECRET_KEY": "bench-jwt-secret-key-0123456789abcdef",
}
ENV = {
    **SECRETS,
    "APP_ENV": "production",
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "MAIL_SERVER": "127.0.0.1",
    "RATELIMIT_ENABLED": "false",
    "LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)  # before config.py is imported: it reads the environment once
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import psycopg2  # noqa: E402
import redis  # noqa: E402

from project.rpc.generated import auth_pb2, auth_pb2_grpc  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_database() -> None:
    admin_url, name = DATABASE_URL.rsplit("/", 1)
    conn = psycopg2.connect(f"{admin_url}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def prepare() -> tuple[str, int]:
    """A fresh schema with PRODUCTS products and one user; returns an access token and a product id."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from project import create_app
    from project.auth.sessions import start_session
    from project.extensions import db
    from project.passwords import hash_password
    from project.products.models import Product
    from project.users.models import User

    ensure_database()
    redis.Redis.from_url(REDIS_URL).flushdb()
    # The floor's /redis document: 4 KB of JSON, as a cached page of products is.
    floor_document = json.dumps({"items": [{"n": n, "text": "x" * 60} for n in range(55)]})
    redis.Redis.from_url(REDIS_URL).set("bench:floor:4k", floor_document)
    app = create_app(app_env="production")
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        upgrade(directory=str(ROOT / "migrations"))
        db.session.add_all(
            Product(
                sku=f"BENCH-{n:03d}",
                name=f"Bench product {n}",
                description=f"A product of the benchmark, number {n}, with a few words of text.",
                price=n + 0.99,
                stock=n,
                category=f"category{n % 10}",
            )
            for n in range(PRODUCTS)
        )
        name = f"bench-{uuid.uuid4().hex[:10]}"
        user = User(
            email=f"{name}@example.com",
            username=name,
            password_hash=hash_password(uuid.uuid4().hex),
            role="user",
            is_active=True,
            is_verified=True,
        )
        db.session.add(user)
        db.session.commit()
        product_id = db.session.scalar(text("SELECT min(id) FROM products"))
        token = start_session(user, "bench", "127.0.0.1")["access_token"]
        db.session.commit()
        db.engine.dispose()
    return token, product_id


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def wait_for(port: int, path: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if get(port, path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered 200 on port {port} {path} in time")


def wait_for_grpc(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=60)


LATENCY_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, headers: dict | None = None) -> dict:
    command = [*WRK, f"-d{SECONDS:g}s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "p99_ms": round(float(value) * LATENCY_UNITS[unit], 2),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else None,
    }


def drive(call, seconds: float, threads: int) -> dict:
    """`call(state)` from `threads` threads for `seconds`; per-thread state (a connection)."""
    stop = time.monotonic() + seconds
    counts = [0] * threads
    failures = [0] * threads
    latencies: list[list[float]] = [[] for _ in range(threads)]

    def loop(i: int) -> None:
        state: dict = {}
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                ok = call(state)
            except Exception:
                ok, state = False, {}
            if ok:
                counts[i] += 1
                latencies[i].append(time.perf_counter() - started)
            else:
                failures[i] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    began = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - began
    done = sorted(x for per_thread in latencies for x in per_thread)
    return {
        "rps": round(sum(counts) / elapsed, 1),
        "requests": sum(counts) + sum(failures),
        "p99_ms": round(done[int(len(done) * 0.99)] * 1000, 2) if done else None,
        "errors": sum(failures),
    }


def users_me_call(port: int, token: str):
    headers = {"Authorization": f"Bearer {token}"}

    def call(state: dict) -> bool:
        if "conn" not in state:
            state["conn"] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        state["conn"].request("GET", "/api/v1/users/me", headers=headers)
        response = state["conn"].getresponse()
        response.read()
        return response.status == 200

    return call


def validate_token_call(port: int, token: str):
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    request = auth_pb2.ValidateTokenRequest(token=token)

    def call(state: dict) -> bool:
        return stub.ValidateToken(request, timeout=10).valid

    return call


def grpc_frame(message: bytes) -> bytes:
    """A gRPC message on the wire: not compressed, its length (4 bytes, big-endian), the bytes."""
    return b"\0" + len(message).to_bytes(4, "big") + message


def h2load(url: str, headers: dict, body: bytes | None = None, reply_bytes: int | None = None) -> dict:
    """h2load on `url` for SECONDS (CLIENT_CONNECTIONS, one request in flight on each): req/s
    and p99 of the requests that succeeded. `body`: POST it over HTTP/2 (gRPC), else GET over
    HTTP/1.1. `reply_bytes`: every answer must carry exactly that many DATA bytes."""
    with tempfile.TemporaryDirectory(prefix="bench-h2load-") as tmp:
        log = Path(tmp) / "requests.log"
        command = [H2LOAD, f"-D{SECONDS:g}", f"-c{CLIENT_CONNECTIONS}", "-m1", "-t1", f"--log-file={log}"]
        if body is None:
            command.append("--h1")
        else:
            (Path(tmp) / "body").write_bytes(body)
            command += ["-d", str(Path(tmp) / "body")]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
        rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))
    done, succeeded = (int(x) for x in re.search(r"requests: .*?(\d+) done, (\d+) succeeded", out).groups())
    data = int(re.search(r"traffic: .*\((\d+)\) data", out).group(1))
    durations = sorted(int(row[2]) for row in rows if row[1] == "200")
    errors = done - len(durations)
    if reply_bytes is not None:
        # Calls cut off at the end may have their reply but no trailers yet: at most one per connection.
        answered = data / reply_bytes
        if not (done <= answered <= done + CLIENT_CONNECTIONS) or data % reply_bytes:
            errors = max(errors, 1, done - data // reply_bytes)  # some answers were not the valid reply
    return {
        "rps": rps,
        "requests": done,
        "p99_ms": round(durations[int(len(durations) * 0.99)] / 1000, 2) if durations else None,
        "errors": errors + (done - succeeded),
    }


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVICES = ("postgres", "redis-server", "nginx")


def cpu_ticks() -> collections.Counter:
    """CPU time (user + system, clock ticks) of the live processes, by process group, and of
    PostgreSQL's and Redis's processes together under "services"."""
    ticks: collections.Counter = collections.Counter()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        name, _, rest = stat[stat.index("(") + 1 :].rpartition(")")
        fields = rest.split()  # state, ppid, pgrp, ..., utime (12th), stime (13th)
        used = int(fields[11]) + int(fields[12])
        ticks[int(fields[2])] += used
        if name in SERVICES:
            ticks["services"] += used
    return ticks


def with_cpu(run: Callable[[], dict], server: subprocess.Popen) -> dict:
    """`run()`'s figures and what each request cost in CPU (us): the server's processes (its
    process group) and PostgreSQL's and Redis's (all of their work in the meantime, so
    nothing else should use them during a run)."""
    before = cpu_ticks()
    figures = run()
    used = cpu_ticks() - before
    per_request = 1e6 / CLOCK_TICKS / max(figures["requests"], 1)
    return {
        **figures,
        "server_cpu_us": round(used[server.pid] * per_request),
        "services_cpu_us": round(used["services"] * per_request),
    }


def cpu_per_request(figures: dict) -> int:
    return max(figures["server_cpu_us"] + figures["services_cpu_us"], 1)


def start(command: list[str], env: dict, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True)


NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)


def start_proxy(upstream_port: int, port: int) -> subprocess.Popen:
    """nginx with the shipped proxy config (deploy/nginx/render.py fills in the template) in
    front of `upstream_port`, on `port`."""
    spec = importlib.util.spec_from_file_location("nginx_render", ROOT / "deploy" / "nginx" / "render.py")
    render = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(render)  # type: ignore[union-attr]
    directory = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    (directory / "logs").mkdir()
    variables = render.loopback_variables(port, upstream_port)
    config = directory / "nginx.conf"
    # No access log lines: the app's servers write none in these runs either.
    config.write_text(
        render.render(variables, directory).replace("access_log /dev/stdout api;", "access_log off;")
    )
    command = [NGINX, "-p", str(directory), "-c", str(config), "-e", str(directory / "logs" / "error.log")]
    return start([*command, "-g", "daemon off;"], dict(os.environ), directory)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


FIGURES = ("rps", "p99_ms", "server_cpu_us", "services_cpu_us")


def medians_of(rounds: list[dict], pair: str, name: str) -> dict:
    """Medians over the rounds; failed requests (non-2xx, or gRPC answers not valid) summed."""
    runs = [r[pair][name] for r in rounds]
    return {
        **{key: median([run[key] for run in runs]) for key in FIGURES},
        "failed": sum(run.get("errors", run.get("non_2xx", 0)) for run in runs),
    }


def main() -> int:
    token, product_id = prepare()
    ports = {
        name: free_port() for name in ("floor", "plain", "shipped", "grpc", "proxy_floor", "proxy_shipped")
    }
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    env = {**os.environ, **ENV, "PYTHONPATH": str(ROOT), "GRPC_PORT": str(ports["grpc"])}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # Plain gunicorn runs outside the repository: it would read ./gunicorn.conf.py by default.
    # --no-control-socket, as gunicorn.conf.py has it: gunicorn 27's default control socket is one
    # path per user (~/.gunicorn/gunicorn.ctl), which the floor's and the project's gunicorns,
    # started together, would fight over ("Control server error: [Errno 17] File exists").
    plain_dir = Path(tempfile.mkdtemp(prefix="bench-http-"))
    plain = ["-w", "2", "-k", "sync", "--log-level", "warning", "--no-control-socket"]
    server = {
        "floor": start(
            [gunicorn, *plain, "-b", f"127.0.0.1:{ports['floor']}", "bench.floor_app:app"], env, plain_dir
        ),
        "plain": start([gunicorn, *plain, "-b", f"127.0.0.1:{ports['plain']}", "wsgi:app"], env, plain_dir),
        # The shipped config, with a socket per worker: on the one shared socket a worker
        # takes every connection it wins, and the load generators open theirs in one burst and
        # keep them, so now and then all 16 or 32 land on one worker for the whole round (REST
        # /users/me at ~1,300 req/s, 750-800 us per request, the other worker idle: 7 rounds
        # of 30 in one probe, which made the gRPC/REST ratio read 2-3x). nginx in front ends
        # each upstream connection after 100 requests, so production never keeps such a
        # split; with both workers busy the two ways measured alike (2,935 vs 2,944 req/s).
        "shipped": start(
            [gunicorn, "wsgi:app", "-c", "gunicorn.conf.py"],
            {**env, "GUNICORN_BIND": f"127.0.0.1:{ports['shipped']}", "GUNICORN_REUSE_PORT": "true"},
            ROOT,
        ),
        "grpc": start([sys.executable, "grpc_server.py"], env, ROOT),
    }
    if NGINX:
        server["proxy_floor"] = start_proxy(ports["floor"], ports["proxy_floor"])
        server["proxy_shipped"] = start_proxy(ports["shipped"], ports["proxy_shipped"])
    servers = list(server.values())
    # A proxied case's server is the gunicorn behind it (nginx counts with the services).
    server_on = {port: server[name] for name, port in ports.items() if name in server}
    if NGINX:
        server_on[ports["proxy_floor"]] = server["floor"]
        server_on[ports["proxy_shipped"]] = server["shipped"]
    auth = {"Authorization": f"Bearer {token}"}
    list_path, detail_path, me_path = "/api/v1/products", f"/api/v1/products/{product_id}", "/api/v1/users/me"
    cases = {
        "floor": (ports["floor"], "/hello", None),
        "floor_redis_get": (ports["floor"], "/redis", None),
        "floor_db_read": (ports["floor"], "/db", None),
        "products_list_hit": (ports["plain"], list_path, None),
        "product_detail_hit": (ports["plain"], detail_path, None),
        "users_me": (ports["plain"], me_path, auth),
        "shipped_conf_products_list_hit": (ports["shipped"], list_path, None),
        "shipped_conf_users_me": (ports["shipped"], me_path, auth),
    }
    if NGINX:
        cases["proxied_floor"] = (ports["proxy_floor"], "/hello", None)
        cases["proxied_products_list_hit"] = (ports["proxy_shipped"], list_path, None)
        cases["proxied_users_me"] = (ports["proxy_shipped"], me_path, auth)
    clients: dict[str, Callable[[], dict]] = {
        "grpc_validate_token": lambda: drive(
            validate_token_call(ports["grpc"], token), SECONDS, CLIENT_THREADS
        ),
        "rest_users_me_same_client": lambda: drive(
            users_me_call(ports["shipped"], token), SECONDS, CLIENT_THREADS
        ),
    }
    server_of = {"grpc_validate_token": server["grpc"], "rest_users_me_same_client": server["shipped"]}
    if H2LOAD:
        request = grpc_frame(auth_pb2.ValidateTokenRequest(token=token).SerializeToString())
        grpc_headers = {"content-type": "application/grpc", "te": "trailers"}
        clients["grpc_validate_token"] = lambda: h2load(
            f"http://127.0.0.1:{ports['grpc']}{VALIDATE_TOKEN_PATH}", grpc_headers, request, reply_bytes
        )
        clients["rest_users_me_same_client"] = lambda: h2load(
            f"http://127.0.0.1:{ports['shipped']}{me_path}", auth
        )
    for case, (port, path, headers) in cases.items():
        clients[case] = lambda port=port, path=path, headers=headers: wrk(
            f"http://127.0.0.1:{port}{path}", headers
        )
        server_of[case] = server_on[port]
    # (case, base): run back to back, in turns (AB, then BA) so drift hits both alike.
    pairs = [
        ("products_list_hit", "floor"),
        ("product_detail_hit", "floor"),
        ("users_me", "floor"),
        # What the stack allows one round trip (the 0.65x and 0.45x), in the same run:
        ("products_list_hit", "floor_redis_get"),
        ("users_me", "floor_db_read"),
        ("shipped_conf_products_list_hit", "products_list_hit"),
        ("shipped_conf_users_me", "users_me"),
        ("grpc_validate_token", "rest_users_me_same_client"),
    ]
    if NGINX:
        pairs += [
            # The shipped topology (proxy + gunicorn.conf.py) vs the same project reached directly
            # (#23: >= 0.9x), and vs the floor behind the same proxy.
            ("proxied_products_list_hit", "shipped_conf_products_list_hit"),
            ("proxied_users_me", "shipped_conf_users_me"),
            ("proxied_products_list_hit", "proxied_floor"),
            ("proxied_users_me", "proxied_floor"),
        ]
    if ONLY:
        pairs = [(case, base) for case, base in pairs if any(word in f"{case}/{base}" for word in ONLY)]
    try:
        wait_for(ports["floor"], "/hello")
        for name in ("plain", "shipped"):
            wait_for(ports[name], "/health")
        if NGINX:
            wait_for(ports["proxy_floor"], "/hello")
            wait_for(ports["proxy_shipped"], "/health")
        wait_for_grpc(ports["grpc"])
        with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as channel:
            reply = auth_pb2_grpc.AuthServiceStub(channel).ValidateToken(
                auth_pb2.ValidateTokenRequest(token=token), timeout=10
            )
        assert reply.valid, reply
        reply_bytes = len(grpc_frame(reply.SerializeToString()))
        for case, (port, path, headers) in cases.items():
            status, response_headers, _ = get(port, path, headers)
            if "floor" not in case:
                status, response_headers, _ = get(port, path, headers)  # the second read is a HIT
            assert status == 200, (case, status)
            if path != me_path and "floor" not in case:
                assert response_headers.get("X-Cache") == "HIT", (case, response_headers)
        rounds: list[dict] = []
        for number in range(ROUNDS):
            measured = {}
            for case, base in pairs:
                order = (base, case) if number % 2 == 0 else (case, base)
                figures = {name: with_cpu(clients[name], server_of[name]) for name in order}
                measured[f"{case}/{base}"] = {
                    **figures,
                    "ratio": round(figures[case]["rps"] / figures[base]["rps"], 3),
                    "cpu_ratio": round(cpu_per_request(figures[base]) / cpu_per_request(figures[case]), 3),
                }
            rounds.append(measured)
            print(
                f"round {number + 1} (req/s ratio, CPU ratio): "
                + json.dumps({k: (v["ratio"], v["cpu_ratio"]) for k, v in measured.items()}),
                flush=True,
            )
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            server.wait(timeout=30)

    summary = {}
    for case, base in pairs:
        pair = f"{case}/{base}"
        summary[pair] = {
            "ratio": median([r[pair]["ratio"] for r in rounds]),
            "cpu_ratio": median([r[pair]["cpu_ratio"] for r in rounds]),
            **{name: medians_of(rounds, pair, name) for name in (case, base)},
        }
    report = {
        "benchmark": "hot paths over HTTP vs a floor (bench/floor_app.py), one run, medians over rounds",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "load": " ".join(WRK) + f" -d{SECONDS:g}s",
            "rounds": ROUNDS,
            "grpc_vs_rest_client": (
                f"h2load -c{CLIENT_CONNECTIONS} -m1 -t1 -D{SECONDS:g} (gRPC: HTTP/2; REST: --h1)"
                if H2LOAD
                else f"Python, {CLIENT_THREADS} threads, {SECONDS:g}s per side"
            ),
            "grpc_server": f"python grpc_server.py, GRPC_WORKERS unset ({os.cpu_count()} processes)",
            "servers": "floor and project: gunicorn -w 2 -k sync; shipped: gunicorn -c gunicorn.conf.py"
            " with GUNICORN_REUSE_PORT=true",
            "proxy": "nginx, deploy/nginx's config (access log off), in front of the floor and the shipped"
            if NGINX
            else "nginx not installed: no proxied cases",
            "app": "APP_ENV=production, PostgreSQL + Redis on loopback, rate limits off, LOG_LEVEL=WARNING",
            "products": PRODUCTS,
        },
        "summary": summary,
        "rounds": rounds,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Orders through HTTP: POST /orders -> reserved, with gunicorn and real RQ worker processes.

    python bench/orders.py [--workers 2,4] [--orders 400] [--clients 16] [--rate 20]

Serves the project in production mode under the shipped `gunicorn.conf.py` with two gunicorn
workers, and the floor (bench/floor_app.py) under the same server and settings; runs
`python worker.py --queues stock` processes (2, then 4). For each worker count:

- burst: `--orders` POSTs from `--clients` threads (each its own keep-alive connection), the
  workers running. post_rate = orders / time to send them all; end_to_end = orders / (last
  reserved_at - first POST sent); latency = reserved_at - created_at per order (database
  timestamps: created_at is set in the POST just before its commit and the 202, reserved_at
  by the worker's commit; so it is at least the time from the 202 to `reserved`).
- light: `--rate` orders a second for `--light-seconds`, open loop; the same latency.
- drain: `--orders` POSTed with no worker running, then the workers start:
  (orders - 1) / (last reserved_at - first reserved_at), the workers' own rate.
- floor: the same burst against the floor's POST route (a Flask route that parses the JSON
  and answers 202): the POST rate a Python WSGI app under this server reaches here.

`--stack` instead measures the production-like stack of issue #29: the project under the
shipped gunicorn.conf.py (two workers) with rate limits ON (RATE_LIMIT_DEFAULT high enough
that nothing is refused: the limiter does all its work) and the access log at INFO, two RQ
workers, the scheduler and the gRPC server all running; wrk (`-t2 -c16`, keep-alive, a Lua
script cycling through the order bodies) POSTs for `--seconds`: post_rate = 202s / seconds,
end_to_end = reserved orders / (last reserved_at - wrk's start); then `--rate` orders a
second for `--light-seconds` (the p99 202 -> reserved). BENCH_APP_ROOT runs the app processes
from another checkout (a "before" tree: `git archive <commit> | tar -x -C DIR`), the client
side from this one. Writes bench/results/orders_stack.json (or --output).

Everything runs on this machine at once with whatever else runs on it: compare ratios measured
in the same run. Setup goes through the CLI and HTTP only. Environment: BENCH_DATABASE_URL
(postgresql://postgres@127.0.0.1:5432/bench_orders_h10, created if missing, schema rebuilt),
BENCH_REDIS_URL (redis://127.0.0.1:6379/13, flushed), BENCH_PORT (21410; the floor uses +1).
Writes bench/results/orders.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/<name>.py` puts bench/ first on sys.path, where bench/http.py would shadow the
# standard library's `http` package: take that entry out before anything imports it.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import threading
import time
from datetime import UTC, datetime

import psycopg2
import redis

ROOT = Path(__file__).resolve().parent.parent
# The checkout the app processes run from (--stack may measure another one side by side).
APP_ROOT = Path(os.environ.get("BENCH_APP_ROOT", str(ROOT)))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_orders_h10")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
PORT = int(os.environ.get("BENCH_PORT", "21410"))
PRODUCTS = 20
ADMIN = {"email": "bench@example.com", "password": "Bench!Passw0rd-1"}
ENV = {
    **os.environ,
    "APP_ENV": "production",
    "SECRET_KEY": "bench-secret-key-0123456789abcdef0123",
    "JWT_SECRET_KEY": "bench-jwt-secret-key-0123456789abcdef",
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "MAIL_SERVER": "127.0.0.1",
    "RATELIMIT_ENABLED": "false",
    "LOG_LEVEL": "WARNING",
    "GUNICORN_WORKERS": "2",
}
BIN = Path(sys.executable).parent


def sql(query: str, *params, fetch: bool = False, database: str | None = None):
    url = DATABASE_URL if database is None else DATABASE_URL.rsplit("/", 1)[0] + f"/{database}"
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if fetch else None
    finally:
        conn.close()


def prepare_database() -> None:
    name = DATABASE_URL.rsplit("/", 1)[1]
    if not sql("SELECT 1 FROM pg_database WHERE datname = %s", name, fetch=True, database="postgres"):
        sql(f'CREATE DATABASE "{name}"', database="postgres")
    sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    run_cli("db", "upgrade")
    run_cli("users", "create-admin", "--email", ADMIN["email"], "--password", ADMIN["password"])
    redis.Redis.from_url(REDIS_URL).flushdb()


def run_cli(*args: str) -> None:
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args], cwd=APP_ROOT, env=ENV, check=True, capture_output=True
    )


def start_gunicorn(app: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(BIN / "gunicorn"), app, "-c", "gunicorn.conf.py"],
        cwd=APP_ROOT if app == "wsgi:app" else ROOT,
        env={**ENV, "GUNICORN_BIND": f"127.0.0.1:{port}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/hello" if app.startswith("bench") else "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{app} did not start on port {port}")


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=60)


def request(conn: http.client.HTTPConnection, method: str, path: str, body=None, headers=None):
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read()


def setup_catalogue(port: int) -> tuple[dict, list[int]]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    json_headers = {"Content-Type": "application/json"}
    status, body = request(conn, "POST", "/api/v1/auth/login", ADMIN, json_headers)
    assert status == 200, body
    headers = {**json_headers, "Authorization": f"Bearer {json.loads(body)['access_token']}"}
    ids = []
    for n in range(PRODUCTS):
        product = {"sku": f"BENCH-{n}", "name": f"Bench {n}", "price": 1.5, "stock": 0}
        status, body = request(conn, "POST", "/api/v1/products", product, headers)
        assert status == 201, body
        ids.append(json.loads(body)["id"])
    return headers, ids


def reset(stock: int) -> None:
    sql("TRUNCATE order_items, orders RESTART IDENTITY; UPDATE products SET stock = %s", stock)
    redis.Redis.from_url(REDIS_URL).flushdb()


def start_workers(n: int) -> list[subprocess.Popen]:
    client = redis.Redis.from_url(REDIS_URL)
    before = client.scard("rq:workers")
    procs = [
        subprocess.Popen(
            [sys.executable, "worker.py", "--queues", "stock"],
            cwd=APP_ROOT,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]
    deadline = time.monotonic() + 60
    while client.scard("rq:workers") < before + n:
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start")
        time.sleep(0.1)
    return procs


def bodies(product_ids: list[int], count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "items": [
                {"product_id": pid, "quantity": rng.randint(1, 3)}
                for pid in rng.sample(product_ids, rng.randint(1, 3))
            ]
        }
        for _ in range(count)
    ]


def burst(port: int, path: str, headers: dict, payloads: list[dict], clients: int) -> dict:
    """Every payload POSTed once, `clients` threads at a time; returns the codes and the rate."""
    codes: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client(chunk: list[dict]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        request(conn, "GET", "/health" if path.startswith("/api") else "/hello")  # connect first
        start.wait()
        mine = [request(conn, "POST", path, body, headers)[0] for body in chunk]
        with lock:
            codes.extend(mine)

    threads = [threading.Thread(target=client, args=(payloads[i::clients],)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    sent_at = datetime.now(UTC)
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - t0
    return {"codes": codes, "sent_at": sent_at, "post_rate": round(len(payloads) / seconds, 1)}


def paced(port: int, headers: dict, payloads: list[dict], rate: float, threads: int = 4) -> list[int]:
    """Open loop: payload i is sent at start + i / rate (by whichever thread is free)."""
    codes: list[int] = []
    lock = threading.Lock()
    slots = iter(range(len(payloads)))
    t0 = time.perf_counter() + 0.2

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        while True:
            with lock:
                i = next(slots, None)
            if i is None:
                return
            time.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            status = request(conn, "POST", "/api/v1/orders", payloads[i], headers)[0]
            with lock:
                codes.append(status)

    pool = [threading.Thread(target=client) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return codes


def wait_settled(total: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        [(pending, count)] = sql(
            "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FROM orders", fetch=True
        )
        if pending == 0 and count >= total:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{pending} of {count} orders still pending")
        time.sleep(0.1)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


def summarize(started: datetime | None) -> dict:
    rows = sql("SELECT status, created_at, reserved_at FROM orders", fetch=True)
    reserved = [(created, done) for status, created, done in rows if status == "reserved"]
    latencies = [(done - created).total_seconds() * 1000 for created, done in reserved]
    first = started or min(done for _, done in reserved)
    elapsed = (max(done for _, done in reserved) - first).total_seconds()
    counted = len(reserved) if started else len(reserved) - 1
    return {
        "reserved": len(reserved),
        "not_reserved": len(rows) - len(reserved),
        "seconds": round(elapsed, 3),
        "orders_per_second": round(counted / elapsed, 1),
        "latency_ms": {
            "p50": round(statistics.median(latencies), 1),
            "p99": round(percentile(latencies, 99), 1),
            "max": round(max(latencies), 1),
        },
    }


def run_burst(port, headers, product_ids, workers, orders, clients) -> dict:
    reset(stock=1_000_000)
    procs = start_workers(workers)
    try:
        sent = burst(port, "/api/v1/orders", headers, bodies(product_ids, orders, workers), clients)
        wait_settled(orders)
    finally:
        stop(procs)
    return {
        "accepted_202": sent["codes"].count(202),
        "post_rate": sent["post_rate"],
        **summarize(sent["sent_at"]),
    }


def run_light(port, headers, product_ids, workers, rate, seconds) -> dict:
    reset(stock=1_000_000)
    count = int(rate * seconds)
    procs = start_workers(workers)
    try:
        codes = paced(port, headers, bodies(product_ids, count, 50 + workers), rate)
        wait_settled(count)
    finally:
        stop(procs)
    result = summarize(None)
    del result["seconds"], result["orders_per_second"]
    return {"rate": rate, "orders": count, "accepted_202": codes.count(202), **result}


def run_drain(port, headers, product_ids, workers, orders, clients) -> dict:
    reset(stock=1_000_000)
    sent = burst(port, "/api/v1/orders", headers, bodies(product_ids, orders, 100 + workers), clients)
    procs = start_workers(workers)
    try:
        wait_settled(orders)
    finally:
        stop(procs)
    result = summarize(None)
    del result["latency_ms"]
    return {"accepted_202": sent["codes"].count(202), **result}


WRK_SCRIPT = """
local bodies, n, i = {}, 0, 0
for line in io.lines(os.getenv("BENCH_BODIES")) do n = n + 1; bodies[n] = line end
request = function()
    i = i + 1
    return wrk.format("POST", nil, nil, bodies[(i % n) + 1])
end
"""


def wrk_burst(port: int, headers: dict, payloads: list[dict], seconds: float, clients: int) -> dict:
    """wrk POSTs the payloads in turn for `seconds` on `clients` keep-alive connections."""
    import re
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-orders-") as tmp:
        script, lines = Path(tmp) / "post.lua", Path(tmp) / "bodies.jsonl"
        script.write_text(WRK_SCRIPT)
        lines.write_text("".join(json.dumps(body) + "\n" for body in payloads))
        command = ["wrk", "-t2", f"-c{clients}", f"-d{seconds:g}s", "-s", str(script)]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        sent_at = datetime.now(UTC)
        out = subprocess.run(
            [*command, f"http://127.0.0.1:{port}/api/v1/orders"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "BENCH_BODIES": str(lines)},
        ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    refused = int(errors.group(1)) if errors else 0
    return {"sent_at": sent_at, "requests": total, "not_2xx": refused, "post_rate": round(total / seconds, 1)}


def run_stack(args) -> dict:
    """Issue #29's stack: rate limits on, access log at INFO, 2 RQ workers, scheduler, gRPC."""
    ENV.update({"RATELIMIT_ENABLED": "true", "RATE_LIMIT_DEFAULT": "1000000/minute", "LOG_LEVEL": "INFO"})
    prepare_database()
    server = start_gunicorn("wsgi:app", PORT)
    extras = [
        subprocess.Popen(
            [sys.executable, *command],
            cwd=APP_ROOT,
            env={**ENV, "GRPC_PORT": str(PORT + 2)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for command in (["worker.py", "--scheduler"], ["grpc_server.py"])
    ]
    load_before = os.getloadavg()[0]
    try:
        headers, product_ids = setup_catalogue(PORT)
        reset(stock=1_000_000)
        workers = start_workers(2)
        try:
            sent = wrk_burst(PORT, headers, bodies(product_ids, 5000, 2), args.seconds, args.clients)
            [(stored,)] = sql("SELECT count(*) FROM orders", fetch=True)
            wait_settled(stored)
            burst_result = {**{k: v for k, v in sent.items() if k != "sent_at"}, **summarize(sent["sent_at"])}
            reset(stock=1_000_000)
            count = int(args.rate * args.light_seconds)
            codes = paced(PORT, headers, bodies(product_ids, count, 52), args.rate)
            wait_settled(count)
            light = summarize(None)
            del light["seconds"], light["orders_per_second"]
        finally:
            stop(workers)
    finally:
        stop([server, *extras])
    return {
        "benchmark": "orders end to end on issue #29's stack: POST /orders (wrk) -> reserved",
        "app_root": str(APP_ROOT),
        "server": "gunicorn -c gunicorn.conf.py, GUNICORN_WORKERS=2, APP_ENV=production, "
        "RATELIMIT_ENABLED=true (1000000/minute: nothing refused), LOG_LEVEL=INFO",
        "stack": "2 RQ workers (stock queue), the scheduler, the gRPC server",
        "client": f"wrk -t2 -c{args.clients} -d{args.seconds:g}s, keep-alive, 1-3 items per order",
        "latency_source": "database timestamps: reserved_at - created_at",
        "cpu_count": os.cpu_count(),
        "loadavg_1m_before": round(load_before, 2),
        "burst": burst_result,
        "light": {"rate": args.rate, "orders": count, "accepted_202": codes.count(202), **light},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="2,4")
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--light-seconds", type=float, default=10)
    parser.add_argument("--stack", action="store_true", help="issue #29's stack, wrk as the client")
    parser.add_argument("--seconds", type=float, default=10, help="--stack: wrk's duration")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    if args.stack:
        out = run_stack(args)
        path = Path(args.output or ROOT / "bench" / "results" / "orders_stack.json")
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(json.dumps(out, indent=2), f"wrote {path}", sep="\n")
        return
    args.output = args.output or str(ROOT / "bench" / "results" / "orders.json")

    prepare_database()
    servers = [start_gunicorn("wsgi:app", PORT), start_gunicorn("bench.floor_app:app", PORT + 1)]
    load_before = os.getloadavg()[0]
    runs = []
    try:
        headers, product_ids = setup_catalogue(PORT)
        for n in [int(w) for w in args.workers.split(",")]:
            floor = burst(PORT + 1, "/orders", headers, bodies(product_ids, args.orders, 7), args.clients)
            run = {
                "workers": n,
                "burst": run_burst(PORT, headers, product_ids, n, args.orders, args.clients),
                "floor_post_rate": floor["post_rate"],
                "light": run_light(PORT, headers, product_ids, n, args.rate, args.light_seconds),
                "drain": run_drain(PORT, headers, product_ids, n, args.orders, args.clients),
            }
            run["post_rate_vs_floor"] = round(run["burst"]["post_rate"] / floor["post_rate"], 3)
            print(json.dumps(run), flush=True)
            runs.append(run)
    finally:
        stop(servers)
    out = {
        "benchmark": "orders through HTTP: POST /orders -> reserved",
        "server": "gunicorn -c gunicorn.conf.py, GUNICORN_WORKERS=2, APP_ENV=production",
        "client": f"{args.clients} threads with keep-alive connections, 1-3 items per order",
        "latency_source": "database timestamps: reserved_at - created_at",
        "cpu_count": os.cpu_count(),
        "loadavg_1m_before": round(load_before, 2),
        "runs": runs,
    }
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

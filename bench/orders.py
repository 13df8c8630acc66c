"""Orders throughput: POST /orders -> reserved, with 1, 2 and 4 RQ worker processes.

    python bench/orders.py [--orders 400] [--workers 1,2,4]

Needs PostgreSQL and Redis: database `bench_orders` (created if missing, migrated fresh)
and Redis db 13 (flushed), overridable with BENCH_DATABASE_URL / BENCH_REDIS_URL.
Per run: start N `python worker.py --queues stock` processes, POST the orders from 4 client
threads through the WSGI app in this process, and wait until none is pending.

- end_to_end (workers running while 4 client threads POST):
  orders_per_second = orders / (last reserved_at - first POST sent)
- drain (orders queued first, then the workers start): the workers' own rate,
  (orders - 1) / (last reserved_at - first reserved_at)
- latency: reserved_at - created_at per order, from the database (created_at is set in
  the POST request just before its commit and the 202; reserved_at by the worker's commit).
Writes bench/results/orders.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_orders")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
ENV = {
    "APP_ENV": "development",
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "RATELIMIT_ENABLED": "false",
    "LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)  # before config.py is imported: it reads the environment once
sys.path.insert(0, str(ROOT))

from decimal import Decimal  # noqa: E402

import psycopg2  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from rq import Worker  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from project import create_app  # noqa: E402
from project.auth.sessions import start_session  # noqa: E402
from project.extensions import db, redis_client  # noqa: E402
from project.orders.models import Order  # noqa: E402
from project.passwords import hash_password  # noqa: E402
from project.products.models import Product  # noqa: E402
from project.users.models import User  # noqa: E402

PRODUCTS = 20
CLIENT_THREADS = 4


def ensure_database() -> None:
    admin_url, name = DATABASE_URL.rsplit("/", 1)
    conn = psycopg2.connect(f"{admin_url}/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def prepare(app) -> tuple[list[int], dict]:
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        upgrade(directory=str(ROOT / "migrations"))
        user = User(email="bench@example.com", username="bench", password_hash=hash_password("Bench!12345"))
        db.session.add(user)
        products = [
            Product(sku=f"BENCH-{n}", name=f"Bench {n}", description="", price=Decimal("1.50"), stock=0)
            for n in range(PRODUCTS)
        ]
        db.session.add_all(products)
        db.session.commit()
        headers = {"Authorization": f"Bearer {start_session(user)['access_token']}"}
        db.session.commit()
        return [p.id for p in products], headers


def reset(app, stock: int) -> None:
    with app.app_context():
        db.session.execute(text("TRUNCATE order_items, orders RESTART IDENTITY"))
        db.session.execute(text("UPDATE products SET stock = :s"), {"s": stock})
        db.session.commit()
        redis_client.client.flushdb()


def start_workers(app, n: int) -> list[subprocess.Popen]:
    procs = [
        subprocess.Popen(
            [sys.executable, "worker.py", "--queues", "stock"],
            cwd=ROOT,
            env={**os.environ, **ENV},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]
    with app.app_context():
        deadline = time.monotonic() + 60
        while Worker.count(connection=redis_client.client) < n:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.2)
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=60)


def post_orders(app, headers: dict, bodies: list[dict]) -> list[int]:
    def post(chunk: list[dict]) -> list[int]:
        client = app.test_client()
        codes = []
        for body in chunk:
            codes.append(client.post("/api/v1/orders", json=body, headers=headers).status_code)
        return codes

    chunks = [bodies[i::CLIENT_THREADS] for i in range(CLIENT_THREADS)]
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        return [code for codes in pool.map(post, chunks) for code in codes]


def wait_until_settled(app, total: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    with app.app_context():
        while True:
            pending = db.session.scalar(select(func.count()).where(Order.status == "pending"))
            db.session.rollback()
            if pending == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{pending} of {total} orders still pending")
            time.sleep(0.25)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def make_bodies(product_ids: list[int], orders: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "items": [
                {"product_id": pid, "quantity": rng.randint(1, 3)}
                for pid in rng.sample(product_ids, rng.randint(1, 3))
            ]
        }
        for _ in range(orders)
    ]


def summarize(app, started: datetime | None) -> dict:
    """`started` None: time from the first reservation (drain runs, no worker start-up)."""
    with app.app_context():
        rows = db.session.execute(select(Order.status, Order.created_at, Order.reserved_at)).all()
    reserved = [r for r in rows if r.status == "reserved"]
    latencies = [(r.reserved_at - r.created_at).total_seconds() * 1000 for r in reserved]
    first = started or min(r.reserved_at for r in reserved)
    elapsed = (max(r.reserved_at for r in reserved) - first).total_seconds()
    counted = len(reserved) if started else len(reserved) - 1
    return {
        "reserved": len(reserved),
        "seconds": round(elapsed, 3),
        "orders_per_second": round(counted / elapsed, 1),
        "latency_ms": {
            "p50": round(statistics.median(latencies), 1),
            "p95": round(percentile(latencies, 95), 1),
            "p99": round(percentile(latencies, 99), 1),
            "max": round(max(latencies), 1),
        },
    }


def run_end_to_end(app, product_ids: list[int], headers: dict, workers: int, orders: int) -> dict:
    """Workers running while the orders are POSTed: what a client sees."""
    reset(app, stock=1_000_000)
    bodies = make_bodies(product_ids, orders, seed=workers)
    procs = start_workers(app, workers)
    try:
        started = datetime.now(UTC)
        t0 = time.monotonic()
        codes = post_orders(app, headers, bodies)
        posted_seconds = time.monotonic() - t0
        wait_until_settled(app, orders)
    finally:
        stop_workers(procs)
    return {
        "accepted_202": codes.count(202),
        "post_rate_per_second": round(orders / posted_seconds, 1),
        **summarize(app, started),
    }


def run_drain(app, product_ids: list[int], headers: dict, workers: int, orders: int) -> dict:
    """The orders queued first, then the workers drain them: the workers' own throughput
    (the clients no longer compete for the CPU). Latency here includes the wait for the workers."""
    reset(app, stock=1_000_000)
    codes = post_orders(app, headers, make_bodies(product_ids, orders, seed=100 + workers))
    procs = start_workers(app, workers)
    try:
        wait_until_settled(app, orders)
    finally:
        stop_workers(procs)
    result = summarize(app, None)
    result.pop("latency_ms")
    return {"accepted_202": codes.count(202), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()

    ensure_database()
    app = create_app()
    product_ids, headers = prepare(app)
    load_before = os.getloadavg()[0]
    runs = []
    for n in [int(w) for w in args.workers.split(",")]:
        result = {
            "workers": n,
            "orders": args.orders,
            "end_to_end": run_end_to_end(app, product_ids, headers, n, args.orders),
            "drain": run_drain(app, product_ids, headers, n, args.orders),
        }
        print(json.dumps(result), flush=True)
        runs.append(result)
    out = {
        "benchmark": "orders: POST /orders -> reserved",
        "latency_source": "database timestamps: reserved_at - created_at",
        "client": f"{CLIENT_THREADS} threads, in-process WSGI test client, 1-3 items per order",
        "cpu_count": os.cpu_count(),
        "loadavg_1m_before": round(load_before, 2),
        "runs": runs,
    }
    path = ROOT / "bench" / "results" / "orders.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""Catalogue scale benchmark: `python bench/catalogue.py` -> bench/results/catalogue.json.

Fills PostgreSQL (database `bench_catalogue`, created if missing) with 10,000 and then
1,000,000 products (one INSERT ... SELECT generate_series, then the real migration 0003
builds its indexes and live count), and measures, through the in-process Flask test client
(no network, no gunicorn), the median and p99 latency of:
  - page 1 of the list, the filtered+sorted list, a selective search, a broad search;
  - each uncached (the `products` cache version is bumped before every request, so the
    database answers, counts included) and cached (the same request again: HIT).
Then times a sync of 10,000 upstream products from a local DummyJSON-shaped HTTP server
(created, then the same again: updated).

Environment: BENCH_DATABASE_URL (postgresql://postgres@127.0.0.1:5432/bench_catalogue),
BENCH_REDIS_URL (redis://127.0.0.1:6379/2), BENCH_SIZES (10000,1000000), BENCH_REPEAT (100).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PGOPTIONS", "-c maintenance_work_mem=256MB")

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from config import database_url  # noqa: E402
from project import create_app  # noqa: E402
from project.caching import bump  # noqa: E402
from project.extensions import db  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_catalogue")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "10000,1000000").split(",")]
REPEAT = int(os.environ.get("BENCH_REPEAT", "100"))
SYNC_PRODUCTS = 10_000
RESULTS = ROOT / "bench" / "results" / "catalogue.json"
MIGRATIONS = str(ROOT / "migrations")
CATEGORIES = [f"category{n:02d}" for n in range(20)]
WORDS = ["lamp", "desk", "chair", "table", "sofa", "shelf", "rug", "mirror", "clock", "vase"]

FILL = """
INSERT INTO products (sku, name, description, price, stock, category, created_at, updated_at)
SELECT 'SKU-' || i,
       'Product ' || i || ' ' || (ARRAY[{words}])[1 + i % 10],
       'Description ' || md5(i::text),
       ((i * 7919) % 100000) / 100.0,
       i % 50,
       (ARRAY[{categories}])[1 + (i * 31) % 20],
       now() - make_interval(secs => i),
       now()
FROM generate_series(1::bigint, :n) AS i
"""


def ensure_database() -> None:
    admin = create_engine(
        database_url(DATABASE_URL.rsplit("/", 1)[0] + "/postgres"), isolation_level="AUTOCOMMIT"
    )
    name = DATABASE_URL.rsplit("/", 1)[1]
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def make_app():
    return create_app(
        app_env="testing",
        overrides={"SQLALCHEMY_DATABASE_URI": DATABASE_URL, "REDIS_URL": REDIS_URL, "LOG_LEVEL": "WARNING"},
    )


def fill(app, size: int) -> dict:
    started = time.perf_counter()
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        upgrade(directory=MIGRATIONS, revision="0001_initial")
        words = ", ".join(f"'{w}'" for w in WORDS)
        categories = ", ".join(f"'{c}'" for c in CATEGORIES)
        with db.engine.begin() as conn:
            conn.execute(text(FILL.format(words=words, categories=categories)), {"n": size})
        loaded = time.perf_counter()
        # The real migration builds the catalogue indexes and the live count on the full table.
        upgrade(directory=MIGRATIONS)
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE products"))
            live = conn.scalar(text("SELECT live FROM product_counts"))
        db.engine.dispose()
        redis = app.extensions["redis"]
        redis.flushdb()
    assert live == size, (live, size)
    return {"insert_s": round(loaded - started, 2), "total_s": round(time.perf_counter() - started, 2)}


def timings(client, path: str, uncached: bool, app) -> dict:
    samples = []
    client.get(path)  # warm the connection pool and the cache
    for _ in range(REPEAT):
        if uncached:
            with app.app_context():
                bump("products")
        t0 = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.get_json()
        assert response.headers["X-Cache"] == ("MISS" if uncached else "HIT")
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2),
        "total": response.get_json()["total"],
    }


def plans(app, queries: dict[str, str]) -> dict:
    """EXPLAIN of the SQL behind each request: which index serves it."""
    import logging

    found: dict[str, list[str]] = {}
    with app.app_context():
        statements: list[str] = []
        engine = db.engine

        def capture(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith("SELECT") and "products" in statement:
                statements.append(cursor.mogrify(statement, parameters).decode())

        from sqlalchemy import event

        event.listen(engine, "before_cursor_execute", capture)
        client = app.test_client()
        for name, path in queries.items():
            statements.clear()
            bump("products")
            client.get(path)
            found[name] = []
            with engine.connect() as conn:
                for statement in statements:
                    plan = conn.execute(text("EXPLAIN " + statement.replace("%", "%%"))).scalars().all()
                    found[name].append(" | ".join(line.strip() for line in plan[:6]))
        event.remove(engine, "before_cursor_execute", capture)
    logging.getLogger(__name__).debug("plans %s", found)
    return found


class Upstream(BaseHTTPRequestHandler):
    products: list[dict] = []

    def do_GET(self):  # noqa: N802
        args = parse_qs(urlparse(self.path).query)
        limit, skip = int(args.get("limit", ["30"])[0]), int(args.get("skip", ["0"])[0])
        body = json.dumps(
            {
                "products": self.products[skip : skip + limit],
                "total": len(self.products),
                "skip": skip,
                "limit": limit,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def bench_sync(app) -> dict:
    from project.products.sync import run_sync

    Upstream.products = [
        {
            "id": 900_000_000 + n,
            "title": f"Upstream {n} {WORDS[n % 10]}",
            "description": f"Synced product {n}",
            "price": round(1 + n % 1000 * 0.37, 2),
            "stock": n % 20,
            "category": CATEGORIES[n % 20],
            **({"sku": f"UPSKU-{n}"} if n % 2 else {}),
        }
        for n in range(SYNC_PRODUCTS)
    ]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    app.config["PRODUCTS_SYNC_URL"] = f"http://127.0.0.1:{server.server_address[1]}/products"
    result = {}
    with app.app_context():
        for label in ("create", "update"):
            t0 = time.perf_counter()
            run = run_sync(f"bench-{label}")
            result[f"{label}_s"] = round(time.perf_counter() - t0, 2)
            result[f"{label}_counts"] = {"created": run.created, "updated": run.updated, "failed": run.failed}
            assert run.status == "succeeded", run.error
    server.shutdown()
    return {"products": SYNC_PRODUCTS, "page_size": app.config.get("PRODUCTS_SYNC_PAGE_SIZE", 100), **result}


def main() -> int:
    ensure_database()
    results: dict = {
        "method": "in-process Flask test client, PostgreSQL 15 + Redis 7 on loopback, 2 shared cores; "
        "uncached = products cache version bumped before each request; cached = X-Cache HIT",
        "repeat": REPEAT,
        "sizes": {},
    }
    for size in SIZES:
        app = make_app()
        print(f"filling {size:,} products ...", flush=True)
        filled = fill(app, size)
        with app.app_context():
            probe = db.session.scalar(text("SELECT substr(md5((:n / 2)::text), 10, 8)"), {"n": size})
            db.session.remove()
        queries = {
            "list_page1": "/api/v1/products",
            "list_filtered_sorted": "/api/v1/products?category=category07&in_stock=true"
            "&min_price=100&max_price=600&sort_by=price&sort_order=asc",
            "search_selective": f"/api/v1/products/search?q={probe}",
            "search_broad": "/api/v1/products/search?q=category07",
        }
        client = app.test_client()
        measured = {}
        for name, path in queries.items():
            measured[name] = {
                "path": path,
                "uncached": timings(client, path, True, app),
                "cached": timings(client, path, False, app),
            }
            print(f"  {name}: {measured[name]['uncached']} / cached {measured[name]['cached']}", flush=True)
        results["sizes"][str(size)] = {"fill": filled, "requests": measured, "plans": plans(app, queries)}
        if size == SIZES[0]:
            results["sync"] = bench_sync(app)
            print(f"  sync: {results['sync']}", flush=True)
    small, large = (results["sizes"][str(s)]["requests"] for s in (SIZES[0], SIZES[-1]))
    results["ratios_large_over_small_uncached_median"] = {
        name: round(large[name]["uncached"]["median_ms"] / small[name]["uncached"]["median_ms"], 2)
        for name in small
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["ratios_large_over_small_uncached_median"]), "->", RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

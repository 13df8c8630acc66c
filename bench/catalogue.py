"""Catalogue scale benchmark: `make bench-catalogue` -> bench/results/catalogue.json.

Fills PostgreSQL (database `bench_catalogue`, created if missing) with 10,000 and then
1,000,000 products (one INSERT ... SELECT generate_series, then the real migrations from 0003
on build the indexes, planner statistics and live count), and measures, through the
in-process Flask test client (no network, no gunicorn), the median and p99 latency of:
  - page 1 of the list, the filtered+sorted list, a selective search, a broad search (5% of
    rows), and page 500 of the list and of the broad search;
  - each uncached (the `products` cache version is bumped before every request, so the
    database answers, counts included) and cached (the same request again: HIT);
  - the floor: a minimal Flask app answering 20 items through the same test client.
Writes EXPLAIN (ANALYZE, BUFFERS) of every statement behind each request to
bench/results/catalogue_plans_<size>.txt, a cProfile of the broad search to
bench/results/catalogue_profile_<size>.txt, and times the broad search's page + exact total
as two statements vs one with a window count. Then times a sync of 10,000 upstream products
from a local DummyJSON-shaped HTTP server (created, then the same again: updated).

Environment: BENCH_DATABASE_URL (postgresql://postgres@127.0.0.1:5432/bench_catalogue),
BENCH_REDIS_URL (redis://127.0.0.1:6379/2), BENCH_SIZES (10000,1000000), BENCH_REPEAT (100),
BENCH_REUSE (1: keep an already filled size).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/<name>.py` puts bench/ first on sys.path, where bench/http.py would shadow the
# standard library's `http` package: take that entry out before anything imports it.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import json
import os
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PGOPTIONS", "-c maintenance_work_mem=256MB")

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from config import database_url  # noqa: E402
from project import create_app  # noqa: E402
from project.caching import invalidate  # noqa: E402
from project.extensions import db  # noqa: E402

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_catalogue")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "10000,1000000").split(",")]
REPEAT = int(os.environ.get("BENCH_REPEAT", "100"))
# BENCH_REUSE=1 keeps a size's schema when it is already filled and migrated (the 1M fill
# takes minutes; the figures do not depend on a fresh fill).
REUSE = os.environ.get("BENCH_REUSE", "") == "1"
SYNC_PRODUCTS = 10_000
RESULTS = ROOT / "bench" / "results" / "catalogue.json"
PLANS = str(ROOT / "bench" / "results" / "catalogue_plans_{size}.txt")
PROFILE = str(ROOT / "bench" / "results" / "catalogue_profile_{size}.txt")
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


def schema(size: int) -> str:
    return f"catalogue_{size}"


def ensure_database() -> None:
    admin = create_engine(
        database_url(DATABASE_URL.rsplit("/", 1)[0] + "/postgres"), isolation_level="AUTOCOMMIT"
    )
    name = DATABASE_URL.rsplit("/", 1)[1]
    with admin.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    # One schema per size in the one database; public holds only pg_trgm (it is on every
    # search_path, so a table left there would shadow the sizes' own).
    engine = create_engine(database_url(DATABASE_URL))
    with engine.begin() as conn:
        # Dropping pg_trgm drops the sizes' trigram indexes with it: a reuse keeps it.
        if REUSE and conn.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")):
            engine.dispose()
            return
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        conn.execute(text("CREATE EXTENSION pg_trgm SCHEMA public"))
    engine.dispose()


def make_app(size: int):
    """An app on the size's schema, with its own cache key prefix in the one Redis db."""
    url = f"{DATABASE_URL}?options=-csearch_path%3D{schema(size)},public"
    overrides = {
        "SQLALCHEMY_DATABASE_URI": url,
        "REDIS_URL": REDIS_URL,
        "CACHE_KEY_PREFIX": f"bench{size}:",
        "LOG_LEVEL": "WARNING",
    }
    return create_app(app_env="testing", overrides=overrides)


def filled(app, size: int) -> bool:
    """The size's schema is there, migrated to head, with exactly `size` live products (a
    run's sync adds products to the smallest size, so that one is refilled next time)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    head = ScriptDirectory.from_config(config).get_current_head()
    with app.app_context(), db.engine.connect() as conn:
        try:
            version = conn.scalar(text("SELECT version_num FROM alembic_version"))
            live = conn.scalar(text("SELECT live FROM product_counts"))
            rows = conn.scalar(text("SELECT count(*) FROM products"))
        except Exception:
            return False
        finally:
            db.engine.dispose()
    return version == head and live == rows == size


def fill(app, size: int) -> dict:
    started = time.perf_counter()
    if REUSE and filled(app, size):
        return {"reused": True}
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema(size)} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema(size)}"))
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
    assert live == size, (live, size)
    return {"insert_s": round(loaded - started, 2), "total_s": round(time.perf_counter() - started, 2)}


def timings(apps: dict, path: str, uncached: bool) -> dict:
    """Median and p99 of `path` on every size, the sizes interleaved request by request so
    that the load of a shared machine weighs on each alike (their ratio is what counts)."""
    clients = {size: app.test_client() for size, app in apps.items()}
    samples: dict[int, list[float]] = {size: [] for size in apps}
    bodies = {}
    for client in clients.values():
        client.get(path)  # warm the connection pool and the cache
    for _ in range(REPEAT):
        for size, client in clients.items():
            if uncached:
                with apps[size].app_context():
                    invalidate("products")
            t0 = time.perf_counter()
            response = client.get(path)
            samples[size].append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.get_json()
            assert response.headers["X-Cache"] == ("MISS" if uncached else "HIT")
            bodies[size] = response.get_json()
    result = {}
    for size, values in samples.items():
        values.sort()
        result[size] = {
            "median_ms": round(statistics.median(values), 2),
            "p99_ms": round(values[min(len(values) - 1, int(len(values) * 0.99))], 2),
            "total": bodies[size]["total"],
        }
    return result


def plans(app, queries: dict[str, str], size: int) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of every SQL statement behind each request (cache bumped
    first, so the page and its count both run): the full text goes to
    bench/results/catalogue_plans_<size>.txt, each plan's top line and scans into the JSON."""
    from sqlalchemy import event

    found: dict[str, list[str]] = {}
    report: list[str] = []
    with app.app_context():
        statements: list[str] = []
        engine = db.engine

        def capture(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith(("SELECT", "WITH")) and "products" in statement:
                statements.append(cursor.mogrify(statement, parameters).decode())

        event.listen(engine, "before_cursor_execute", capture)
        client = app.test_client()
        for name, path in queries.items():
            statements.clear()
            invalidate("products")
            client.get(path)
            found[name] = []
            with engine.connect() as conn:
                for statement in list(statements):
                    sql = statement.replace("%", "%%")
                    plan = conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql)).scalars().all()
                    # The JSON keeps each plan's top line and its scans: which index serves it.
                    scans = [line.strip() for line in plan[1:] if "Scan" in line]
                    found[name].append(" | ".join([plan[0].strip(), *scans]))
                    report += [f"-- {name}: GET {path}", statement, *plan, ""]
        event.remove(engine, "before_cursor_execute", capture)
    Path(PLANS.format(size=size)).write_text("\n".join(report))
    return found


def count_strategies(app, term: str) -> dict:
    """The broad search's page and exact total, two ways, timed in SQL (median of 9):
    two statements (the page's ids, then COUNT) vs one (count(*) OVER () beside the ids)."""
    where = "deleted_at IS NULL AND search_text LIKE :p"
    order = "ORDER BY created_at DESC, id DESC LIMIT 20 OFFSET :o"
    strategies = {
        "page_then_count": [
            f"SELECT id FROM products WHERE {where} {order}",
            f"SELECT count(*) FROM products WHERE {where}",
        ],
        "window_count": [f"SELECT id, count(*) OVER () FROM products WHERE {where} {order}"],
    }
    result = {}
    with app.app_context(), db.engine.connect() as conn:
        for page in (1, 500):
            for name, sqls in strategies.items():
                samples = []
                for _ in range(9):
                    t0 = time.perf_counter()
                    for sql in sqls:
                        conn.execute(text(sql), {"p": f"%{term}%", "o": (page - 1) * 20}).all()
                    samples.append((time.perf_counter() - t0) * 1000)
                result[f"page{page}_{name}_ms"] = round(statistics.median(samples), 2)
    return result


def profile(app, path: str, size: int) -> None:
    """cProfile of one uncached request (cache bumped first), top 15 by own time, to
    bench/results/catalogue_profile_<size>.txt: where the time of a slow request goes."""
    import cProfile
    import io
    import pstats

    client = app.test_client()
    with app.app_context():
        invalidate("products")
    profiler = cProfile.Profile()
    profiler.enable()
    client.get(path)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    Path(PROFILE.format(size=size)).write_text(f"GET {path} (uncached)\n{out.getvalue()}")


def floor_timings(repeat: int) -> dict:
    """The floor: a minimal Flask app answering a page of 20 product-shaped items through
    the same test client, so the figures above can be read as multiples of it."""
    from flask import Flask

    item = {
        "id": 1,
        "sku": "SKU-1",
        "name": "Product 1 lamp",
        "description": "Description " + "0" * 32,
        "price": 9.99,
        "stock": 1,
        "category": "category01",
        "external_id": None,
        "created_at": "2026-11-21T10:00:00+00:00",
        "updated_at": "2026-11-21T10:00:00+00:00",
    }
    floor = Flask("floor")

    @floor.get("/page")
    def page():
        return {"items": [item] * 20, "page": 1, "per_page": 20, "total": 1, "pages": 1}

    client = floor.test_client()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        assert client.get("/page").status_code == 200
        samples.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": round(statistics.median(samples), 2)}


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
        "sizes in one database (a schema each), measured interleaved request by request; "
        "uncached = products cache version bumped before each request; cached = X-Cache HIT",
        "repeat": REPEAT,
        "sizes": {},
    }
    apps = {}
    for size in SIZES:
        apps[size] = make_app(size)
        print(f"filling {size:,} products ...", flush=True)
        results["sizes"][str(size)] = {"fill": fill(apps[size], size), "requests": {}}
    apps[SIZES[0]].extensions["redis"].flushdb()
    with apps[SIZES[-1]].app_context():
        # A term that matches one row at every size (the md5 of a row every size has).
        probe = db.session.scalar(text("SELECT substr(md5(4321::text), 10, 8)"))
        db.session.remove()
    queries = {
        "list_page1": "/api/v1/products",
        "list_filtered_sorted": "/api/v1/products?category=category07&in_stock=true"
        "&min_price=100&max_price=600&sort_by=price&sort_order=asc",
        "search_selective": f"/api/v1/products/search?q={probe}",
        "search_broad": "/api/v1/products/search?q=category07",
        "list_page500": "/api/v1/products?page=500",
        "search_broad_page500": "/api/v1/products/search?q=category07&page=500",
    }
    for name, path in queries.items():
        uncached, cached = timings(apps, path, True), timings(apps, path, False)
        for size in SIZES:
            results["sizes"][str(size)]["requests"][name] = {
                "path": path,
                "uncached": uncached[size],
                "cached": cached[size],
            }
        print(f"  {name}: uncached {uncached} / cached {cached}", flush=True)
    floor = floor_timings(REPEAT)
    for size in SIZES:
        entry = results["sizes"][str(size)]
        entry["requests"]["floor"] = {"path": "minimal Flask app, 20 items", "uncached": floor}
        entry["count_strategies_broad_search"] = count_strategies(apps[size], "category07")
        entry["plans"] = plans(apps[size], queries, size)
        profile(apps[size], queries["search_broad"], size)
        # The EXPLAIN check: a selective term is served by the trigram index.
        selective_plan = " ".join(entry["plans"]["search_selective"])
        entry["selective_search_uses_trigram_index"] = "ix_products_search_trgm" in selective_plan
        print(f"  {size}: counts {entry['count_strategies_broad_search']}", flush=True)
    results["sync"] = bench_sync(apps[SIZES[0]])
    print(f"  sync: {results['sync']}", flush=True)
    small, large = (results["sizes"][str(s)]["requests"] for s in (SIZES[0], SIZES[-1]))
    results["ratios_large_over_small_uncached_median"] = {
        name: round(large[name]["uncached"]["median_ms"] / small[name]["uncached"]["median_ms"], 2)
        for name in small
    }
    results["ratios_page500_over_page1_uncached_median"] = {
        str(size): {
            deep: round(
                results["sizes"][str(size)]["requests"][deep]["uncached"]["median_ms"]
                / results["sizes"][str(size)]["requests"][first]["uncached"]["median_ms"],
                2,
            )
            for deep, first in (("list_page500", "list_page1"), ("search_broad_page500", "search_broad"))
        }
        for size in SIZES
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["ratios_large_over_small_uncached_median"]), "->", RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

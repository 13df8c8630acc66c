"""What tracing costs when it is off (no OTEL_* variables): side by side, in one process.

    python bench/tracing_off.py

Two cases, alternated round by round so the machine's drift hits both alike:
- `shipped`: the app as it is, tracing off: each log line asks `tracing.current_trace_id()`
  and each enqueue goes through `tracing.enqueue_span()` (one boolean test each);
- `no_hooks`: the same app with those two hooks replaced by the code they had before tracing
  (the request-id filter alone; the enqueue with no context manager around it).
Each case sends BENCH_REQUESTS requests of two kinds through the test client: `POST /orders`
(one enqueue, one access line) and `GET /users/me` (one access line); the access lines are
logged (LOG_LEVEL=INFO, to /dev/null) so that the log hook runs. The figure is the process CPU
time per request, median over BENCH_ROUNDS rounds, and the ratio shipped / no_hooks. Also the
hooks alone, timed in a loop (ns per call).
SQLite and fakeredis in this process, so nothing shared is loaded. Writes
bench/results/tracing_off.json.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/http.py would shadow the standard library's `http` package: bench/ off the path.
sys.path[:] = [str(ROOT)] + [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
for name in list(os.environ):
    if name.startswith("OTEL_"):
        del os.environ[name]  # off: as shipped, with no OTEL_* variables

from project import create_app, jobs, tracing  # noqa: E402
from project.extensions import db  # noqa: E402
from project.ops import logs  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "400"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
RESULT = ROOT / "bench" / "results" / "tracing_off.json"


def no_hooks_filter(self, record):
    record.request_id = logs.request_id_var.get()
    record.trace_id = "-"  # the formatter of the traced format is not used when off
    return True


@contextlib.contextmanager
def plain_enqueue_span(_name, _queue):
    yield {}


def setup():
    workdir = tempfile.mkdtemp(prefix="bench-tracing-")
    app = create_app(
        app_env="testing",
        overrides={
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir}/bench.db",
            "REDIS_URL": "fakeredis://",
            "RATELIMIT_ENABLED": False,
            "LOG_LEVEL": "INFO",
        },
    )
    handler = app.extensions["log_handler"]
    handler.setStream(open(os.devnull, "w"))  # noqa: SIM115  (for the whole run)
    logging.getLogger().setLevel(logging.INFO)
    with app.app_context():
        db.create_all()
        from project.auth.sessions import start_session
        from project.passwords import hash_password
        from project.products import service
        from project.users.models import User

        user = User(email="b@example.com", username="bench", password_hash=hash_password("x"), role="user")
        db.session.add(user)
        db.session.commit()
        token = start_session(user, "bench", "127.0.0.1")["access_token"]
        db.session.commit()
        from decimal import Decimal

        fields = {"sku": "B-1", "name": "P", "price": Decimal("1.00"), "stock": 10**6}
        product = service.create_product(fields)
    return app, {"Authorization": f"Bearer {token}"}, product["id"]


def run_case(app, headers, product_id) -> float:
    client = app.test_client()
    order = {"items": [{"product_id": product_id, "quantity": 1}]}
    started = time.process_time()
    for _ in range(REQUESTS // 2):
        assert client.post("/api/v1/orders", json=order, headers=headers).status_code == 202
        assert client.get("/api/v1/users/me", headers=headers).status_code == 200
    return (time.process_time() - started) / REQUESTS * 1e6  # us of CPU per request


def main() -> int:
    app, headers, product_id = setup()
    shipped_filter = logs.RequestIdFilter.filter
    shipped_span = jobs.tracing.enqueue_span
    results: dict[str, list[float]] = {"shipped": [], "no_hooks": []}
    run_case(app, headers, product_id)  # warm up
    for _ in range(ROUNDS):
        for case in ("shipped", "no_hooks"):
            plain = case == "no_hooks"
            logs.RequestIdFilter.filter = no_hooks_filter if plain else shipped_filter  # type: ignore[method-assign]
            jobs.tracing.enqueue_span = plain_enqueue_span if plain else shipped_span  # type: ignore[assignment]
            results[case].append(run_case(app, headers, product_id))
    logs.RequestIdFilter.filter = shipped_filter  # type: ignore[method-assign]
    jobs.tracing.enqueue_span = shipped_span  # type: ignore[assignment]

    def span_off():
        with tracing.enqueue_span("f", "q"):
            pass

    hooks_ns = {
        "current_trace_id": timeit.timeit(tracing.current_trace_id, number=200_000) / 200_000 * 1e9,
        "enqueue_span": timeit.timeit(span_off, number=200_000) / 200_000 * 1e9,
    }
    medians = {case: statistics.median(values) for case, values in results.items()}
    report = {
        "what": "CPU us per request (POST /orders and GET /users/me alternately), tracing off",
        "requests_per_round": REQUESTS,
        "rounds": ROUNDS,
        "cpu_us_per_request": results,
        "median_cpu_us_per_request": medians,
        "ratio_shipped_over_no_hooks": round(medians["shipped"] / medians["no_hooks"], 4),
        "hook_ns_per_call_when_off": {name: round(ns, 1) for name, ns in hooks_ns.items()},
    }
    RESULT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

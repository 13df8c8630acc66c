"""gunicorn settings side by side: each paired back to back with plain `-w 2 -k sync`.

    python bench/gunicorn_settings.py

The project (set up as bench/http.py does: production mode, PostgreSQL + Redis, 100 products)
under each setting below at once; for each setting and path (products list page 1 HIT,
/users/me), wrk runs it and the plain reference back to back, in turns (AB, then BA), for
BENCH_ROUNDS rounds of BENCH_SECONDS each (BENCH_SETTINGS: comma-separated names, a part of
the study). Prints and writes bench/results/gunicorn_settings.json:
the ratio to the reference per round. gunicorn.conf.py's defaults come from these figures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_http", ROOT / "bench" / "http.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # type: ignore[union-attr]

RESULTS = ROOT / "bench" / "results" / "gunicorn_settings.json"
REFERENCE = "sync 2"
SETTINGS = {
    REFERENCE: ["-w", "2", "-k", "sync"],
    "sync 3": ["-w", "3", "-k", "sync"],
    "gthread 2x1": ["-w", "2", "-k", "gthread", "--threads", "1"],
    "gthread 2x2": ["-w", "2", "-k", "gthread", "--threads", "2"],
    # A listening socket per worker (SO_REUSEPORT): the kernel spreads the connections.
    "gthread 2x2 reuse-port": ["-w", "2", "-k", "gthread", "--threads", "2", "--reuse-port"],
    "gthread 2x4": ["-w", "2", "-k", "gthread", "--threads", "4"],
    "gthread 3x1": ["-w", "3", "-k", "gthread", "--threads", "1"],
    "gthread 3x2": ["-w", "3", "-k", "gthread", "--threads", "2"],
}


def main() -> int:
    only = os.environ.get("BENCH_SETTINGS")  # comma-separated names: a part of the study
    chosen = [name for name in SETTINGS if name == REFERENCE or not only or name in only.split(",")]
    token, _ = bench.prepare()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    env = {**os.environ, **bench.ENV, "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    elsewhere = Path(tempfile.mkdtemp(prefix="bench-gunicorn-"))  # no ./gunicorn.conf.py there
    ports = {name: bench.free_port() for name in chosen}
    servers = [
        bench.start(
            [
                gunicorn,
                *SETTINGS[name],
                "--log-level",
                "warning",
                "-b",
                f"127.0.0.1:{ports[name]}",
                "wsgi:app",
            ],
            env,
            elsewhere,
        )
        for name in chosen
    ]
    paths = {
        "products_list_hit": ("/api/v1/products", None),
        "users_me": ("/api/v1/users/me", {"Authorization": f"Bearer {token}"}),
    }
    ratios: dict[str, dict[str, list[float]]] = {}
    try:
        for name in chosen:
            bench.wait_for(ports[name], "/health")
            for path, headers in paths.values():
                bench.get(ports[name], path, headers)  # the next reads are HITs
        for number in range(bench.ROUNDS):
            for name in chosen:
                if name == REFERENCE:
                    continue
                for key, (path, headers) in paths.items():
                    order = (REFERENCE, name) if number % 2 == 0 else (name, REFERENCE)
                    rps = {n: bench.wrk(f"http://127.0.0.1:{ports[n]}{path}", headers)["rps"] for n in order}
                    ratio = round(rps[name] / rps[REFERENCE], 2)
                    ratios.setdefault(name, {}).setdefault(key, []).append(ratio)
                    print(
                        f"{name:32} {key:18} {rps[name]:8.1f} vs {rps[REFERENCE]:8.1f} req/s: {ratio}",
                        flush=True,
                    )
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            server.wait(timeout=30)
    report = {
        "benchmark": "gunicorn settings: req/s ratio to `gunicorn -w 2 -k sync`, per round",
        "load": " ".join(bench.WRK) + f" -d{bench.SECONDS:g}s, pairs back to back, AB then BA",
        "ratios": ratios,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(ratios, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""gunicorn settings side by side: each paired back to back with plain `-w 2 -k sync`.

    python bench/gunicorn_settings.py

The project (set up as bench/http.py does: production mode, PostgreSQL + Redis, 100 products)
under each setting below at once; for each setting and path (products list page 1 HIT,
/users/me), wrk runs it and the plain reference back to back, in turns (AB, then BA), for
BENCH_ROUNDS rounds of BENCH_SECONDS each (BENCH_SETTINGS: comma-separated names, a part of
the study, written to gunicorn_settings_partial.json). Prints and writes
bench/results/gunicorn_settings.json:
the ratio to the reference per round, by req/s and by CPU per request (the reference's server +
PostgreSQL + Redis CPU per request over the setting's: bench/http.py's `cpu_ratio`).
gunicorn.conf.py's defaults come from these figures.

BENCH_BEHIND_PROXY=1: the study as production runs it, each setting (and the reference) behind
its own nginx with the project's proxy config (deploy/nginx); wrk drives the proxies, and
nginx's CPU counts with the services'. Writes gunicorn_settings_proxy.json.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import tempfile
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_http", ROOT / "bench" / "http.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)  # type: ignore[union-attr]

ONLY = os.environ.get("BENCH_SETTINGS")  # comma-separated names: a part of the study
BEHIND_PROXY = os.environ.get("BENCH_BEHIND_PROXY", "").lower() in {"1", "true", "yes"}
RESULTS = (
    ROOT
    / "bench"
    / "results"
    / f"gunicorn_settings{'_proxy' if BEHIND_PROXY else ''}{'_partial' if ONLY else ''}.json"
)
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
    # What ships (its workers, threads, worker class, logger, metrics in files), for reference.
    "gunicorn.conf.py": ["-c", str(ROOT / "gunicorn.conf.py")],
}


def main() -> int:
    chosen = [name for name in SETTINGS if name == REFERENCE or not ONLY or name in ONLY.split(",")]
    token, _ = bench.prepare()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    env = {**os.environ, **bench.ENV, "PYTHONPATH": str(ROOT)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    elsewhere = Path(tempfile.mkdtemp(prefix="bench-gunicorn-"))  # no ./gunicorn.conf.py there
    ports = {name: bench.free_port() for name in chosen}
    servers = {
        name: bench.start(
            [
                gunicorn,
                *SETTINGS[name],
                "--log-level",
                "warning",
                # gunicorn 27's default control socket is one path per user: the settings,
                # started together, would fight over it (gunicorn.conf.py turns it off too).
                "--no-control-socket",
                "-b",
                f"127.0.0.1:{ports[name]}",
                "wsgi:app",
            ],
            env,
            elsewhere,
        )
        for name in chosen
    }
    # Where wrk sends its requests: gunicorn itself, or the nginx in front of it.
    entry = dict(ports)
    proxies = []
    if BEHIND_PROXY:
        assert bench.NGINX, "BENCH_BEHIND_PROXY needs nginx"
        entry = {name: bench.free_port() for name in chosen}
        proxies = [bench.start_proxy(ports[name], entry[name]) for name in chosen]
    paths = {
        "products_list_hit": ("/api/v1/products", None),
        "users_me": ("/api/v1/users/me", {"Authorization": f"Bearer {token}"}),
    }
    ratios: dict[str, dict[str, list[float]]] = {}
    cpu_ratios: dict[str, dict[str, list[float]]] = {}
    try:
        for name in chosen:
            bench.wait_for(entry[name], "/health")
            for path, headers in paths.values():
                bench.get(entry[name], path, headers)  # the next reads are HITs
        for number in range(bench.ROUNDS):
            for name in chosen:
                if name == REFERENCE:
                    continue
                for key, (path, headers) in paths.items():
                    order = (REFERENCE, name) if number % 2 == 0 else (name, REFERENCE)
                    url = {n: f"http://127.0.0.1:{entry[n]}{path}" for n in order}
                    runs = {n: partial(bench.wrk, url[n], headers) for n in order}
                    figures = {n: bench.with_cpu(run, servers[n]) for n, run in runs.items()}
                    ours, reference = figures[name], figures[REFERENCE]
                    ratio = round(ours["rps"] / reference["rps"], 2)
                    cpu_ratio = round(bench.cpu_per_request(reference) / bench.cpu_per_request(ours), 2)
                    ratios.setdefault(name, {}).setdefault(key, []).append(ratio)
                    cpu_ratios.setdefault(name, {}).setdefault(key, []).append(cpu_ratio)
                    print(
                        f"{name:32} {key:18} {ours['rps']:8.1f} vs {reference['rps']:8.1f} req/s: {ratio}; "
                        f"server CPU {ours['server_cpu_us']} vs {reference['server_cpu_us']} us: {cpu_ratio}",
                        flush=True,
                    )
    finally:
        for server in [*servers.values(), *proxies]:
            os.killpg(server.pid, signal.SIGTERM)
        for server in [*servers.values(), *proxies]:
            server.wait(timeout=30)
    report = {
        "benchmark": "gunicorn settings: req/s ratio to `gunicorn -w 2 -k sync`, per round",
        "load": " ".join(bench.WRK) + f" -d{bench.SECONDS:g}s, pairs back to back, AB then BA",
        "behind_proxy": BEHIND_PROXY,
        "ratios": ratios,
        "cpu_ratios": cpu_ratios,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(ratios, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""gunicorn settings from the environment: `gunicorn wsgi:app -c gunicorn.conf.py`.

GUNICORN_BIND (or PORT), GUNICORN_WORKERS, GUNICORN_THREADS, GUNICORN_TIMEOUT,
GUNICORN_GRACEFUL_TIMEOUT, GUNICORN_KEEPALIVE, GUNICORN_MAX_REQUESTS, GUNICORN_REUSE_PORT,
GUNICORN_CONTROL_SOCKET, FORWARDED_ALLOW_IPS, LOG_LEVEL, PROMETHEUS_MULTIPROC_DIR.

In production gunicorn sits behind the buffering proxy (deploy/nginx) and binds a private
address; it refuses to start half configured (config.check_environment), logs one start line
(`when_ready`), and answers its own errors in the contract's JSON error shape.

Metrics: every worker is its own process, so prometheus_client writes its figures to files
in PROMETHEUS_MULTIPROC_DIR (a fresh temporary directory when unset) and /metrics adds them
up. The directory is emptied at start (stale files would count twice) and a worker that
exits is marked dead (its live gauges drop out).
"""

import json
import multiprocessing
import os
import shutil
import sys
import tempfile
from http import HTTPStatus

from gunicorn import util as gunicorn_util
from gunicorn.glogging import Logger

# gunicorn reads this file before it changes to --chdir: the project's modules from beside it.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from config import check_environment, refusing_bad_config, settings, start_line  # noqa: E402

# Production half configured: one line naming the variable and exit 4, before gunicorn binds
# or forks anything (workers would otherwise each fail to load the app).
with refusing_bad_config():
    check_environment()


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
# Chosen by measurement behind the proxy, as production runs it (#23: `BENCH_BEHIND_PROXY=1
# make bench-gunicorn`, each setting against the reference `-w 2 -k sync` behind its own nginx;
# the method and figures: bench/README.md, issue #23).
# With the proxy buffering, a sync worker is safe from slow clients, but it closes every
# connection, so nginx connects anew for each request; a gthread worker keeps nginx's upstream
# connections alive (the template's `keepalive`) and is also not held by a slow upstream call
# (the posts proxy). 2 threads per worker: 2x4 gained nothing in the earlier direct study (more
# threads per core only queue on the GIL once requests are this cheap); one process per core.
workers = _int("GUNICORN_WORKERS", min(multiprocessing.cpu_count(), 8))
threads = _int("GUNICORN_THREADS", 2)
worker_class = "gthread"
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Above the proxy's upstream keepalive_timeout (4 s): nginx closes an idle connection first,
# never sending a request on one gunicorn is closing.
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# No recycling by default: at 2,000 requests a worker was restarted every few seconds under load,
# and each restart re-imports the app (bench/README.md). Set GUNICORN_MAX_REQUESTS to bound
# a leak; the jitter (10%) keeps the workers from restarting together.
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10
# One listening socket, bound by the master: a second server started on a bound port then fails
# to bind, loudly. (GUNICORN_REUSE_PORT=true gives a socket per worker, SO_REUSEPORT, which lets
# the kernel spread connections over the workers; but then any process of the same user can
# bind the port too, and silently take a share of the connections.)
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "false").strip().lower() in {"1", "true", "yes", "on"}
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The app writes one access line per request, with its request id (project/ops/logs.py);
# gunicorn writes none (see AppLogger below).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# gunicorn 27's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl), which
# several servers on one host would fight over: off unless a path is given.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or None
control_socket_disable = control_socket is None
if control_socket is None:
    del control_socket
# Heartbeat files in memory, not on a possibly slow disk (Docker's /tmp is an overlay).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-multiproc-")
MULTIPROC_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def when_ready(server):
    """The start line (config.start_line), once the master has bound its socket."""
    listen = ",".join(str(listener) for listener in server.LISTENERS) or ",".join(server.cfg.bind)
    cfg = server.cfg
    concurrency = f"workers={cfg.workers} threads={cfg.threads} worker_class={cfg.worker_class_str}"
    server.log.info("%s", start_line("web", listen, concurrency, settings()))


def on_starting(server):
    shutil.rmtree(MULTIPROC_DIR, ignore_errors=True)  # (a mount point keeps itself, emptied)
    os.makedirs(MULTIPROC_DIR, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# gunicorn's own lines (boot, worker exits) in the app's format (JSON unless LOG_FORMAT=plain)
# and with its ISO 8601 UTC timestamps (project/ops/logs.py).
_log_format = os.environ.get("LOG_FORMAT") or (
    "json" if os.environ.get("APP_ENV", "development") == "production" else "plain"
)
_formatter = (
    {
        "()": "project.ops.logs.JsonLineFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    }
    if _log_format == "json"
    else {"()": "project.ops.logs.PlainFormatter", "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
)
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"app": _formatter},
    # gunicorn merges this dict shallowly into its defaults: every key it uses is here.
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "app", "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "app", "stream": "ext://sys.stderr"},
    },
    # The app installs its own root handler (with request ids) in each worker.
    "root": {"level": loglevel.upper(), "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["error_console"], "propagate": False},
        # The app writes the access lines (with request ids); gunicorn's would duplicate them.
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
}


class AppLogger(Logger):
    """gunicorn's logger without its access line. With `logconfig_dict` set, gunicorn builds
    every request's access-line fields (all headers and environ keys, a strftime; its cost:
    bench/README.md) and then drops the line, as `gunicorn.access` logs nothing."""

    def access(self, resp, req, environ, request_time):
        pass


logger_class = AppLogger


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's own answers (a malformed or oversized request line or header, refused before
    the app sees the request) in the contract's error shape instead of gunicorn's HTML page."""
    error = GUNICORN_ERRORS.get(status_int) or (
        "internal_error" if status_int >= 500 else "malformed_request"
    )
    status = HTTPStatus(status_int).phrase  # the app's status texts
    body = json.dumps(
        {"code": status_int, "status": status, "error": error, "message": mesg or "Internal server error."}
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn_util.write_nonblock(sock, head.encode("latin-1") + body)


# The `error` codes of what gunicorn refuses: the app's (project/errors.py) and the proxy's.
GUNICORN_ERRORS = {403: "forbidden", 414: "uri_too_long", 431: "headers_too_large"}
# gunicorn's workers write these through `gunicorn.util.write_error` (workers/base.py,
# handle_error) and offer no hook for it: replaced here, before the master forks the workers.
gunicorn_util.write_error = write_json_error

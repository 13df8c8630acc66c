"""Settings from the environment: Development (embedded), Testing, Production.

The contract's names are listed in API.md (Environment); the tuning knobs beyond it
(ORDERS_*, GRPC_WORKERS, METRICS_PORT, ...) in the README's Configuration table, with their
defaults. `get_config()` picks the class from `APP_ENV`; `create_app()` may lay overrides on
top (tests do), then `derive_settings()` fills in the extensions' settings that follow from
them. In development, a `.env` file beside this one fills in what the environment
does not set (`load_dotenv_file`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, overload

from dotenv import dotenv_values

BASE_DIR = Path(__file__).resolve().parent
DEV_SECRET_KEY = "dev-secret-key-change-me-0123456789abcdef"
DEV_JWT_SECRET_KEY = "dev-jwt-secret-key-change-me-0123456789abcdef"


class ConfigError(RuntimeError):
    """A setting production cannot run with; the message names the variable, in one line."""


@overload
def env_str(name: str, default: str) -> str: ...
@overload
def env_str(name: str, default: None = None) -> str | None: ...
def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_int(name: str, default: int) -> int:
    value = env_str(name)
    return default if value is None else int(value)


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    raw = env_str(name, default) or ""
    return [item.strip() for item in raw.split(",") if item.strip()]


def load_dotenv_file(path: Path) -> list[str]:
    """Development only: fill in from `path` the variables the environment leaves unset.

    A real environment variable always wins. `.env` is never read when the environment says
    `APP_ENV=production` or `testing` (a stray file must not change a server or a test run),
    and it cannot set `APP_ENV` itself. Returns the names it set.
    """
    if (os.environ.get("APP_ENV") or "development").lower() != "development" or not path.is_file():
        return []
    loaded = []
    for name, value in dotenv_values(path).items():
        if name != "APP_ENV" and value is not None and name not in os.environ:
            os.environ[name] = value
            loaded.append(name)
    return loaded


load_dotenv_file(BASE_DIR / ".env")


def database_url(url: str) -> str:
    """psycopg2 is our PostgreSQL driver; SQLAlchemy 2.1 would pick psycopg 3 for `postgresql://`.
    A libpq multi-host URL (`postgresql://u@db1:5432,db2:5432/app?target_session_attrs=read-write`)
    becomes the form SQLAlchemy reads (`...@/app?host=db1:5432&host=db2:5432&...`): libpq then
    tries the hosts in turn and keeps the one that takes writes."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + _libpq_hosts_as_query(url[len(prefix) :])
    return url


def _libpq_hosts_as_query(rest: str) -> str:
    """`user@h1:p1,h2:p2/db?q` -> `user@/db?host=h1:p1&host=h2:p2&q` (unchanged for one host)."""
    netloc, slash, tail = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    if "," not in hosts:
        return rest
    path, question, query = tail.partition("?")
    pairs = "&".join(f"host={host}" for host in hosts.split(",") if host)
    return f"{credentials}{at}{slash}{path}?{pairs}{'&' + query if question and query else ''}"


def sqlite_url() -> str:
    return f"sqlite:///{BASE_DIR / 'instance' / 'app.db'}"


class Config:
    APP_ENV = "development"
    SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
    JWT_SECRET_KEY = env_str("JWT_SECRET_KEY", DEV_JWT_SECRET_KEY)

    SQLALCHEMY_DATABASE_URI = env_str("DATABASE_URL", sqlite_url())
    # No pool pre-ping: it is one more round trip on every request. A connection the server
    # ended fails once (a 503; the token check retries it) and the pool replaces it.
    # hide_parameters: SQL parameters (password hashes, token digests) never reach a log line or
    # an error message.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"hide_parameters": True}
    # PostgreSQL connections each process's pool keeps open, and how many more it may open at
    # a peak (closed again when returned). The connection budget: README "Scaling out".
    DB_POOL_SIZE = env_int("DB_POOL_SIZE", 5)
    DB_MAX_OVERFLOW = env_int("DB_MAX_OVERFLOW", 10)
    # Unset: cache, rate limits and jobs run inside the one process.
    REDIS_URL = env_str("REDIS_URL")
    # Every Redis client's connect and read timeout (the limiter's too), and how long a process
    # then skips Redis before trying again (project/breaker.py): a hung Redis costs each
    # process one timeout per window, not one per request.
    REDIS_TIMEOUT_SECONDS = float(env_str("REDIS_TIMEOUT_SECONDS", "1"))
    REDIS_BREAKER_SECONDS = float(env_str("REDIS_BREAKER_SECONDS", "5"))
    # Seconds a Redis command keeps retrying a failed connection (a failover's switch): short
    # in web processes, longer in workers and the scheduler (project/redis_client.py).
    REDIS_RETRY_SECONDS = float(env_str("REDIS_RETRY_SECONDS", "1"))
    REDIS_BACKGROUND_RETRY_SECONDS = float(env_str("REDIS_BACKGROUND_RETRY_SECONDS", "15"))

    ACCESS_TOKEN_EXPIRE_MINUTES = env_int("ACCESS_TOKEN_EXPIRE_MINUTES", 30)
    REFRESH_TOKEN_EXPIRE_DAYS = env_int("REFRESH_TOKEN_EXPIRE_DAYS", 7)
    VERIFY_TOKEN_EXPIRE_HOURS = env_int("VERIFY_TOKEN_EXPIRE_HOURS", 48)
    RESET_TOKEN_EXPIRE_MINUTES = env_int("RESET_TOKEN_EXPIRE_MINUTES", 60)
    LOGIN_MAX_FAILURES = 5
    LOGIN_LOCKOUT_MINUTES = 15
    # Argon2id cost (project/passwords.py); a change rehashes each password at its next login.
    PASSWORD_HASH_TIME_COST = 3
    PASSWORD_HASH_MEMORY_COST = 65536
    PASSWORD_HASH_PARALLELISM = 4

    POSTS_API_URL = env_str("POSTS_API_URL", "https://jsonplaceholder.typicode.com")
    POSTS_CACHE_TTL = env_int("POSTS_CACHE_TTL", 300)
    PRODUCTS_SYNC_URL = env_str("PRODUCTS_SYNC_URL", "https://dummyjson.com/products")
    PRODUCTS_SYNC_PROVIDER = env_str("PRODUCTS_SYNC_PROVIDER", "dummyjson")
    PRODUCTS_SYNC_INTERVAL_MINUTES = env_int("PRODUCTS_SYNC_INTERVAL_MINUTES", 30)
    PRODUCTS_CACHE_TTL = env_int("PRODUCTS_CACHE_TTL", 300)
    PRODUCTS_SYNC_PAGE_SIZE = env_int("PRODUCTS_SYNC_PAGE_SIZE", 100)
    UPSTREAM_TIMEOUT_SECONDS = env_int("UPSTREAM_TIMEOUT_SECONDS", 5)
    # A posts upstream path that failed is not asked again for this long (project/http.py Circuits).
    UPSTREAM_CIRCUIT_SECONDS = env_int("UPSTREAM_CIRCUIT_SECONDS", 5)
    RESERVATION_TTL_MINUTES = env_int("RESERVATION_TTL_MINUTES", 15)
    # A pending order older than this with no drain on its way is drained by the safety net
    # (a lost job, or a drain flag a Redis hang left set with nothing queued): seconds, so
    # orders settle within seconds of Redis answering again.
    ORDERS_REQUEUE_AFTER_SECONDS = env_int("ORDERS_REQUEUE_AFTER_SECONDS", 5)
    # How often the scheduler runs that safety net, and how long one reservation may run.
    ORDERS_RECOVERY_INTERVAL_SECONDS = env_int("ORDERS_RECOVERY_INTERVAL_SECONDS", 5)
    ORDERS_RESERVE_TIMEOUT_SECONDS = env_int("ORDERS_RESERVE_TIMEOUT_SECONDS", 30)
    # The scheduler's pass: periodic jobs and RQ retries due run at most this late.
    SCHEDULER_INTERVAL_SECONDS = env_int("SCHEDULER_INTERVAL_SECONDS", 1)
    UNVERIFIED_USER_TTL_HOURS = env_int("UNVERIFIED_USER_TTL_HOURS", 48)
    RQ_RESULT_TTL = 3600  # seconds a finished job's result is kept
    # A worker silent this long (killed, crashed, host gone) is not live (/health/full).
    WORKER_HEARTBEAT_TTL_SECONDS = env_int("WORKER_HEARTBEAT_TTL_SECONDS", 90)
    # A running job's lease, renewed every few seconds by its worker: a job whose worker died
    # (SIGKILL, lost host) counts as abandoned this long after the last renewal (worker.py).
    JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 10)

    MAIL_SERVER = env_str("MAIL_SERVER")
    MAIL_PORT = env_int("MAIL_PORT", 25)
    MAIL_USE_TLS = env_bool("MAIL_USE_TLS", False)
    MAIL_USERNAME = env_str("MAIL_USERNAME")
    MAIL_PASSWORD = env_str("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = env_str("MAIL_DEFAULT_SENDER", "no-reply@localhost")
    # Seconds before each retry of an email whose sending failed (one retry per entry).
    EMAIL_RETRY_BACKOFF = [int(s) for s in env_list("EMAIL_RETRY_BACKOFF", "30,120,600,1800")]
    FRONTEND_URL = env_str("FRONTEND_URL", "http://localhost:5000")
    # Mails to one address, and mails one account causes, per window (limits' notation).
    MAIL_RATE_LIMIT = env_str("MAIL_RATE_LIMIT", "5/hour")
    # A larger request body is a 413 before anything reads it (project/inputs.py).
    MAX_CONTENT_LENGTH = env_int("MAX_CONTENT_LENGTH", 1024 * 1024)

    RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
    RATE_LIMIT_DEFAULT = env_str("RATE_LIMIT_DEFAULT", "200/minute")
    RATE_LIMIT_AUTH = env_str("RATE_LIMIT_AUTH", "10/minute")

    CORS_ORIGINS = env_list("CORS_ORIGINS")
    LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
    LOG_FORMAT = env_str("LOG_FORMAT", "plain")
    GRPC_PORT = env_int("GRPC_PORT", 50051)
    # The address the gRPC server binds ("[::]": every interface, IPv4 and IPv6).
    GRPC_HOST = env_str("GRPC_HOST", "[::]")
    # Processes serving GRPC_PORT (grpc_server.py), and the token/health-check threads of each (each
    # thread keeps a PostgreSQL connection for the check). 2: one thread runs Python while the
    # other waits on PostgreSQL; more threads only take turns at the one GIL (the measurements:
    # bench/README.md, gRPC threads).
    GRPC_WORKERS = env_int("GRPC_WORKERS", os.cpu_count() or 1)
    GRPC_MAX_WORKERS = env_int("GRPC_MAX_WORKERS", 2)
    # Worker and gRPC processes serve their own /metrics here (unset: off); the API's is /metrics.
    METRICS_PORT = env_int("METRICS_PORT", 0) or None
    METRICS_HOST = env_str("METRICS_HOST", "0.0.0.0")
    # Reverse proxies in front of the API whose X-Forwarded-For/-Proto to trust (0: none), so
    # the login lockout and rate limits see the client's address, not the proxy's.
    TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
    RQ_DASHBOARD_USERNAME = env_str("RQ_DASHBOARD_USERNAME")
    RQ_DASHBOARD_PASSWORD = env_str("RQ_DASHBOARD_PASSWORD")

    # flask-smorest / OpenAPI
    API_TITLE = "Flask Service API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/"
    OPENAPI_JSON_PATH = "openapi.json"
    # The docs pages load their assets from this server (project/static, versions pinned in the
    # Makefile's docs-assets target): they work without internet.
    OPENAPI_SWAGGER_UI_PATH = "/docs"
    OPENAPI_SWAGGER_UI_URL = "/static/swagger-ui-5.35.0/"
    OPENAPI_SWAGGER_UI_CONFIG = {
        "validatorUrl": None,  # no badge from validator.swagger.io
        "persistAuthorization": True,
        "displayOperationId": True,
    }
    OPENAPI_REDOC_PATH = "/redoc"
    OPENAPI_REDOC_URL = "/static/redoc-2.5.4/redoc.standalone.js"


class DevelopmentConfig(Config):
    APP_ENV = "development"


class TestingConfig(Config):
    APP_ENV = "testing"
    TESTING = True
    SQLALCHEMY_DATABASE_URI = env_str("TEST_DATABASE_URL", "sqlite://")
    # "fakeredis://" gives every part of the app one in-memory Redis (see project/redis_client.py).
    REDIS_URL = env_str("TEST_REDIS_URL", "fakeredis://")
    RATELIMIT_ENABLED = False
    MAIL_SERVER = None
    LOG_FORMAT = env_str("LOG_FORMAT", "plain")
    # Argon2 at its cheapest in tests: hashing cost is not what they check.
    PASSWORD_HASH_TIME_COST = 1
    PASSWORD_HASH_MEMORY_COST = 1024


class ProductionConfig(Config):
    APP_ENV = "production"
    # No SQLite fallback: without DATABASE_URL production refuses to start (check_production_config).
    SQLALCHEMY_DATABASE_URI = env_str("DATABASE_URL")  # type: ignore[assignment]
    SECRET_KEY = env_str("SECRET_KEY")  # type: ignore[assignment]
    JWT_SECRET_KEY = env_str("JWT_SECRET_KEY")  # type: ignore[assignment]
    LOG_FORMAT = env_str("LOG_FORMAT", "json")


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def get_config(app_env: str | None = None) -> type[Config]:
    name = (app_env or env_str("APP_ENV", "development")).lower()
    if name not in CONFIGS:
        raise ConfigError(f"APP_ENV must be one of {sorted(CONFIGS)}, not {name!r}")
    return CONFIGS[name]


# Exit status of a process refused for its configuration: gunicorn's "app failed to load",
# so that a gunicorn master whose worker meets it stops instead of restarting the worker.
CONFIG_EXIT_STATUS = 4
MIN_SECRET_BYTES = 32


def check_production_config(config: Mapping[str, Any]) -> None:
    """Refuse to run production half configured (API.md, Environment): without a database or
    Redis (it would serve the development SQLite file with Redis off), without a mail server
    (mail would go to the log, emailed tokens with it), or with a missing, development or short
    secret (anyone who guesses it signs tokens). Raises `ConfigError` naming the variable."""
    if not config.get("SQLALCHEMY_DATABASE_URI"):
        raise ConfigError("DATABASE_URL must be set when APP_ENV=production")
    if not config.get("REDIS_URL"):
        raise ConfigError("REDIS_URL must be set when APP_ENV=production")
    if not config.get("MAIL_SERVER"):
        raise ConfigError("MAIL_SERVER must be set when APP_ENV=production")
    for key, dev_value in (("SECRET_KEY", DEV_SECRET_KEY), ("JWT_SECRET_KEY", DEV_JWT_SECRET_KEY)):
        value = config.get(key)
        if not value:
            raise ConfigError(f"{key} must be set when APP_ENV=production")
        if value == dev_value:
            raise ConfigError(f"{key} is the development default; set a secret of your own")
        if len(str(value).encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"{key} must be at least {MIN_SECRET_BYTES} bytes long when APP_ENV=production")


def derive_settings(config: MutableMapping[str, Any]) -> None:
    """The extension settings that follow from the contract's variables, set in an app's
    config (`create_app` calls this once its config and overrides are in)."""
    from project.rate_limits import ONE_TRIP  # here: project imports this module first

    config["SQLALCHEMY_DATABASE_URI"] = database_url(config["SQLALCHEMY_DATABASE_URI"])
    redis_url = config.get("REDIS_URL") or ""
    real_redis = bool(redis_url) and not redis_url.startswith("fakeredis://")
    config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(minutes=config["ACCESS_TOKEN_EXPIRE_MINUTES"])
    config["JWT_REFRESH_TOKEN_EXPIRES"] = timedelta(days=config["REFRESH_TOKEN_EXPIRE_DAYS"])
    config["JWT_TOKEN_LOCATION"] = ["headers"]
    # The limiter object is process-wide and keeps the first default limit it is given, so
    # it gets a callable that reads the current app's setting on every request.
    config["RATE_LIMIT_DEFAULT"] = config.get("RATELIMIT_DEFAULT") or config["RATE_LIMIT_DEFAULT"]
    config["RATELIMIT_DEFAULT"] = _default_rate_limit
    # With Redis, limits keep their counters on the app's own client's pool (create_app's
    # share_redis_with_limiter): the URI only picks limits' Redis storage, so Sentinel and TLS
    # URLs need no second parser.
    config.setdefault("RATELIMIT_STORAGE_URI", "redis://" if real_redis else "memory://")
    config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # One Redis round trip per limited request, headers included (project/rate_limits.py).
    config.setdefault("RATELIMIT_STRATEGY", ONE_TRIP)
    # A Redis outage must not take the API down with it: limits fall back to memory.
    config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    config.setdefault("CACHE_DEFAULT_TIMEOUT", config["PRODUCTS_CACHE_TTL"])
    config.setdefault("CACHE_KEY_PREFIX", "cache:")
    if config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # An unreachable database host must become a 503 within seconds, not hang a worker.
        options = config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
        options.setdefault("connect_args", {}).setdefault("connect_timeout", 5)
        options.setdefault("pool_size", config["DB_POOL_SIZE"])
        options.setdefault("max_overflow", config["DB_MAX_OVERFLOW"])


def _default_rate_limit() -> str:
    from flask import current_app

    return current_app.config["RATE_LIMIT_DEFAULT"]


def settings(config: type[Config] | None = None) -> dict[str, Any]:
    """The settings of a config class (default: `APP_ENV`'s), as `app.config` would hold them
    before `create_app`'s overrides: for code that runs before any app exists."""
    config = config or get_config()
    return {name: getattr(config, name) for name in dir(config) if name.isupper()}


def check_environment() -> None:
    """The production rules on the environment alone, before any app exists (gunicorn's master
    runs this from gunicorn.conf.py, so a refused server binds nothing and forks nothing)."""
    if get_config().APP_ENV == "production":
        check_production_config(settings())


def public_url(url: str | None) -> str:
    """A database or Redis URL as a log line may show it: scheme, hosts, ports and database,
    without user, password or query (libpq takes `?password=` too). Multi-host and Sentinel
    forms keep their host lists."""
    if not url:
        return "none"
    scheme, sep, rest = url.partition("://")
    if not sep:
        return scheme  # sqlite:///path has no credentials; anything else unknown stays short
    if scheme.startswith("postgresql+"):
        scheme = "postgresql"  # the driver the app adds (database_url) is no news to an operator
    # Credentials end at the last "@" (a password may hold "/" or "?"; a host or path never "@").
    rest = rest.rpartition("@")[2].split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}://{rest}"


def start_line(role: str, listen: str, concurrency: str, config: Mapping[str, Any]) -> str:
    """The one line each process logs at start: who it is, where it listens, how many workers
    or threads, and what it talks to (never a password)."""
    database = public_url(config.get("SQLALCHEMY_DATABASE_URI"))
    redis = public_url(config.get("REDIS_URL"))
    environment = config["APP_ENV"]
    return (
        f"{role} starting: listen={listen} {concurrency} env={environment} database={database} redis={redis}"
    )


@contextmanager
def refusing_bad_config() -> Iterator[None]:
    """Around a process's start: a `ConfigError` becomes one line on stderr and exit status
    `CONFIG_EXIT_STATUS`, with no traceback."""
    try:
        yield
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(CONFIG_EXIT_STATUS) from None

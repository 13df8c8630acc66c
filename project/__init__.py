"""The app factory: `create_app()` binds the extensions, blueprints, errors and CLI."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from flask import Flask, Request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from config import check_production_config, database_url, get_config
from project import tracing
from project.database import register_sqlite_functions
from project.rate_limits import ONE_TRIP

# One package per feature; each has routes.py with `blp`, may have cli.py with `commands`, and
# may define `init_app(app)` in its __init__.py to fill the hooks of the features below it.
FEATURES = ("ops", "auth", "users", "products", "posts", "orders", "projects")


def create_app(overrides: dict | None = None, app_env: str | None = None) -> Flask:
    config = get_config(app_env)
    app = Flask(__name__, instance_path=str(Path(__file__).resolve().parent.parent / "instance"))
    app.config.from_object(config)
    app.config.update(overrides or {})
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False  # fields in the order the schemas declare them
    app.session_interface = CookieSessionOnDemand()
    if app.config["APP_ENV"] == "production":
        check_production_config(app.config)

    derive_settings(app)
    tracing.configure()  # before logging: log lines then carry the trace id
    register_input_checks(app)
    register_extensions(app)
    register_error_guard(app)
    register_blueprints(app)
    register_observability(app)
    register_errorhandlers(app)
    register_commands(app)
    tracing.instrument_app(app)
    # Wrapping wsgi_app is Flask's documented way to add middleware; its typing forbids it.
    app.wsgi_app = StripTrailingSlash(app.wsgi_app)  # type: ignore[method-assign]
    if app.config["TRUSTED_PROXY_COUNT"]:
        hops = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    return app


def derive_settings(app: Flask) -> None:
    """Extension settings that follow from the contract's environment variables."""
    from datetime import timedelta

    config = app.config
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
    # With Redis, limits keep their counters on the app's own client's pool (register_extensions):
    # the URI only picks limits' Redis storage, so Sentinel and TLS URLs need no second parser.
    config.setdefault("RATELIMIT_STORAGE_URI", "redis://" if real_redis else "memory://")
    config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # One Redis round trip per limited request, headers included (project/rate_limits.py).
    config.setdefault("RATELIMIT_STRATEGY", ONE_TRIP)
    # A Redis outage must not take the API down with it: limits fall back to memory.
    config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    config.setdefault("CACHE_DEFAULT_TIMEOUT", config["PRODUCTS_CACHE_TTL"])
    config.setdefault("CACHE_KEY_PREFIX", "cache:")
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    elif config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # An unreachable database host must become a 503 within seconds, not hang a worker.
        options = config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
        options.setdefault("connect_args", {}).setdefault("connect_timeout", 5)
        options.setdefault("pool_size", config["DB_POOL_SIZE"])
        options.setdefault("max_overflow", config["DB_MAX_OVERFLOW"])


def _default_rate_limit() -> str:
    from flask import current_app

    return current_app.config["RATE_LIMIT_DEFAULT"]


def register_input_checks(app: Flask) -> None:
    from project.inputs import register_input_checks as register

    register(app)


def register_extensions(app: Flask) -> None:
    import project.models  # noqa: F401  (the whole schema, for Alembic)
    from project.extensions import api, cache, db, jwt, limiter, migrate, redis_client

    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True)
    jwt.init_app(app)
    redis_client.init_app(app)
    if app.extensions["redis"] is not None:
        cache.init_app(app, config={"CACHE_TYPE": "RedisCache", "CACHE_REDIS_HOST": app.extensions["redis"]})
    else:
        cache.init_app(app, config={"CACHE_TYPE": "SimpleCache"})
    share_redis_with_limiter(app)
    limiter.init_app(app)
    api.init_app(app)


def register_error_guard(app: Flask) -> None:
    """Innermost middleware (right around Flask), so the observer and the access line see the
    guard's answer: nothing that escapes Flask reaches gunicorn (project/errors.py)."""
    from project.errors import ErrorGuard

    app.wsgi_app = ErrorGuard(app.wsgi_app)  # type: ignore[method-assign]


def share_redis_with_limiter(app: Flask) -> None:
    """The limiter counts in the app's own Redis through the app's own pool: one timeout, the
    circuit breaker and any URL form (TLS, Sentinel) apply to it as to every other client,
    instead of a client of its own built from the URL with no timeout at all."""
    client = app.extensions["redis"]
    # derive_settings says "redis://" for a real Redis: the pool decides where, the scheme
    # picks the storage. Otherwise: no Redis, fakeredis, or a storage configured apart.
    if client is not None and app.config["RATELIMIT_STORAGE_URI"] == "redis://":
        app.config["RATELIMIT_STORAGE_OPTIONS"] = {"connection_pool": client.connection_pool}


def register_blueprints(app: Flask) -> None:
    from project.extensions import api
    from project.routing import register_routing

    register_routing(app)

    for feature in FEATURES:
        routes = importlib.import_module(f"project.{feature}.routes")
        api.register_blueprint(routes.blp)
        init_feature = getattr(importlib.import_module(f"project.{feature}"), "init_app", None)
        if init_feature is not None:
            init_feature(app)


def register_observability(app: Flask) -> None:
    from project.ops import register_observability as register

    register(app)


def register_errorhandlers(app: Flask) -> None:
    from project.errors import register_error_handlers

    register_error_handlers(app)


def register_commands(app: Flask) -> None:
    from project.seed import seed_command

    app.cli.add_command(seed_command)
    for feature in FEATURES:
        if importlib.util.find_spec(f"project.{feature}.cli") is None:
            continue
        module = importlib.import_module(f"project.{feature}.cli")
        for command in module.commands:
            app.cli.add_command(command)


class CookieSessionOnDemand(SecureCookieSessionInterface):
    """Flask's signed-cookie session, unpacked only when the request carries the cookie: the
    API authenticates with bearer tokens, and building the signer costs every request."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if "HTTP_COOKIE" not in request.environ or self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


class StripTrailingSlash:
    """`/api/v1/users/` answers as `/api/v1/users`, without a redirect (API.md)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if len(path) > 1 and path.endswith("/") and not path.startswith("/rq"):
            environ["PATH_INFO"] = path.rstrip("/") or "/"
        return self.wsgi_app(environ, start_response)


@event.listens_for(Engine, "connect")
def _sqlite_foreign_keys(dbapi_connection, _record) -> None:
    """SQLite enforces foreign keys (and so ON DELETE CASCADE) only when asked; it also gets
    a Unicode-aware lower (project.database.register_sqlite_functions)."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        register_sqlite_functions(dbapi_connection)

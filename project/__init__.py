"""The app factory: `create_app()` composes the settings, extensions, features, errors, CLI
and the WSGI stack; each part lives in its own module."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from config import check_production_config, derive_settings, get_config
from project import sqlite, tracing, wsgi_stack
from project.cookie_session import CookieSessionOnDemand

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

    derive_settings(app.config)
    sqlite.init_app(app)
    tracing.configure()  # before logging: log lines then carry the trace id
    register_input_checks(app)
    register_extensions(app)
    register_blueprints(app)
    register_observability(app)
    register_errorhandlers(app)
    register_commands(app)
    wsgi_stack.wrap(app)  # last: the features have filled its hooks
    return app


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


def share_redis_with_limiter(app: Flask) -> None:
    """The limiter counts in the app's own Redis through the app's own pool: one timeout, the
    circuit breaker and any URL form (TLS, Sentinel) apply to it as to every other client,
    instead of a client of its own built from the URL with no timeout at all."""
    client = app.extensions["redis"]
    # config.derive_settings says "redis://" for a real Redis: the pool decides where, the scheme
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

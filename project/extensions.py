"""The unbound extension objects; `create_app()` binds them to an app."""

import logging
from typing import TYPE_CHECKING

import flask_sqlalchemy
from flask_caching import Cache
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from project.openapi import Api
from project.redis_client import RedisClient

# Stable constraint names, so Alembic migrations are the same on PostgreSQL and SQLite.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


log = logging.getLogger(__name__)


class SQLAlchemy(flask_sqlalchemy.SQLAlchemy):
    """Flask-SQLAlchemy whose end-of-request cleanup cannot fail the request.

    `session.remove()` rolls back what the request left open; on a connection the database
    dropped (a restart, `pg_terminate_backend`, a failover) that rollback raises, after the view
    has answered and maybe committed. Raised from a teardown it would escape Flask's error
    handlers and replace the answer. The session is discarded instead (its connection is
    invalidated, so the pool opens a fresh one) and the view's answer stands.
    """

    def _teardown_session(self, exc: BaseException | None) -> None:
        try:
            self.session.remove()
        except Exception as error:
            log.warning("discarded the request's database session: %s", error.__class__.__name__)
            try:
                self.session().invalidate()
            except Exception:  # the connection is gone either way
                log.debug("invalidating the session failed", exc_info=True)
            self.session.registry.clear()


db = SQLAlchemy(model_class=Base)
# The models' base class. db.Model is Base plus Flask-SQLAlchemy's mixins, built at run time;
# a type checker cannot see it, so it is told the base it is.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
jwt = JWTManager()
cache = Cache()
cors = CORS()
api = Api()
redis_client = RedisClient()
limiter = Limiter(key_func=get_remote_address)

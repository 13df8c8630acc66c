import pytest

from project import create_app
from project.extensions import db


@pytest.fixture
def make_app(database_url):
    """An app with config overrides whose dependencies may be unreachable.

    Not the shared `app` fixture: its teardown empties the database and flushes Redis,
    which would fail against the unreachable ones these tests point at.
    """
    made = []

    def make(**overrides):
        app = create_app(app_env="testing", overrides={"SQLALCHEMY_DATABASE_URI": database_url, **overrides})
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()

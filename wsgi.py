"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`.

In production a missing or unsafe setting stops the process here with one line naming it
(config.refusing_bad_config), for gunicorn's workers and the flask CLI alike.
"""

from config import refusing_bad_config
from project import create_app

with refusing_bad_config():
    app = create_app()

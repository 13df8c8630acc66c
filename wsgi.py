"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

from project import create_app

app = create_app()

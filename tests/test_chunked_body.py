"""A body without Content-Length (`Transfer-Encoding: chunked`) is bounded by the app itself,
whatever is in front of it: counted as it arrives, a 413 in the error shape past
MAX_CONTENT_LENGTH, and none of it processed (API.md, Conventions). Sent over a raw socket to
a real HTTP server (werkzeug's, which de-chunks as gunicorn does); the topology suite does
the same against gunicorn as shipped."""

from __future__ import annotations

import json
import threading

import pytest
from werkzeug.serving import make_server

from project.extensions import db
from tests.helpers import STRONG_PASSWORD, send_chunked

LIMIT = 64 * 1024


@pytest.fixture
def server(app):
    app.config["MAX_CONTENT_LENGTH"] = LIMIT
    running = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield ("127.0.0.1", running.server_port)
    running.shutdown()
    thread.join(timeout=10)


def padded(prefix: bytes, suffix: bytes, size: int, piece: int = 16 * 1024):
    """`prefix` + `size` spaces + `suffix`, in chunks (a valid document once whole)."""
    yield prefix
    for _ in range(size // piece):
        yield b" " * piece
    yield suffix


def projects_count(app) -> int:
    from project.projects.models import Project

    with app.app_context():
        return db.session.query(Project).count()


@pytest.mark.parametrize("size", [5 * 1024 * 1024, LIMIT])  # far past it, and just past it
def test_a_chunked_json_body_past_the_limit_is_a_413_and_nothing_is_stored(app, server, user_headers, size):
    status, headers, body = send_chunked(
        server,
        "/api/v1/projects",
        padded(b'{"name":"x"', b"}", size),
        {**user_headers, "Content-Type": "application/json"},
    )
    assert status == 413, body[:300]
    assert headers["content-type"].startswith("application/json")
    answer = json.loads(body)
    assert answer["code"] == 413 and str(LIMIT) in answer["message"]
    assert projects_count(app) == 0


def test_a_chunked_json_body_within_the_limit_is_read_whole(app, server, user_headers):
    status, _, body = send_chunked(
        server,
        "/api/v1/projects",
        padded(b'{"name":"whole"', b', "description": "end"}', LIMIT - 1024),
        {**user_headers, "Content-Type": "application/json"},
    )
    assert status == 201, body[:300]
    assert json.loads(body)["description"] == "end"  # the last bytes arrived too
    assert projects_count(app) == 1


def test_a_chunked_form_login_past_the_limit_is_a_413_without_tokens(app, server, user):
    form = f"username={user['email']}&password={STRONG_PASSWORD}&scope=".encode()
    status, _, body = send_chunked(
        server,
        "/api/v1/auth/login",
        padded(form, b"x", 5 * 1024 * 1024),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 413, body[:300]
    assert b"access_token" not in body and json.loads(body)["code"] == 413


def test_a_chunked_form_login_within_the_limit_works(server, user):
    form = f"username={user['email']}&password={STRONG_PASSWORD}".encode()
    status, headers, body = send_chunked(
        server,
        "/api/v1/auth/login",
        iter([form[:10], form[10:]]),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200, body[:300]
    assert "access_token" in json.loads(body)

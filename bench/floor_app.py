"""The floors for bench/http.py and bench/orders.py: the smallest Flask JSON routes, served like
the project. /db and /redis are what the stack allows a route that makes one round trip: one
PostgreSQL row read (psycopg2, autocommit) or one Redis GET of a stored 4 KB JSON document
(bench/http.py stores it under FLOOR_REDIS_KEY), each on a connection kept per process."""

import os

from flask import Flask, Response, request

app = Flask(__name__)
FLOOR_REDIS_KEY = "bench:floor:4k"
_connections: dict = {}


@app.get("/hello")
def hello() -> dict:
    return {"hello": "world"}


@app.post("/orders")
def orders() -> tuple[dict, int]:
    """What any JSON POST costs: parse the body, answer 202 with a small object."""
    return {"id": 1, "status": "pending", "items": request.get_json()["items"]}, 202


@app.get("/db")
def db_row() -> dict:
    if "db" not in _connections:
        import psycopg2

        _connections["db"] = psycopg2.connect(os.environ["DATABASE_URL"])
        _connections["db"].autocommit = True
    keys = ("id", "email", "username", "role", "is_active", "created_at")
    with _connections["db"].cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(keys)} FROM users ORDER BY id LIMIT 1")
        row = cursor.fetchone()
    return dict(zip(keys, (*row[:5], row[5].isoformat()), strict=True))


@app.get("/redis")
def redis_get() -> Response:
    if "redis" not in _connections:
        import redis

        _connections["redis"] = redis.Redis.from_url(os.environ["REDIS_URL"])
    return Response(_connections["redis"].get(FLOOR_REDIS_KEY), mimetype="application/json")
